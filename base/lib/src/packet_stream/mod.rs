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

//!
//! ## Where each part lives
//! - this file: the types both sides speak (descriptors, opcodes, statuses,
//!   checked packets, errors, signals);
//! - `layout`: the region's geometry and the shared memory as this Pd sees it;
//! - `ring`: one ring's producing and consuming halves;
//! - `client`: the payload allocator and the client's end;
//! - `server`: the server's end and the requests it takes;
//! - `tests`: both ends against each other and against a hostile peer, on the host.

mod client;
mod layout;
mod ring;
mod server;
#[cfg(test)]
mod tests;

use crate::abi;

pub use client::{Acknowledgement, Client};
pub use layout::{Geometry, SharedRegion};
pub use server::{Request, Server};

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
