//! Setting up a bulk session (Block, FileSystem): one packet stream in a
//! dataspace the server creates from the client's donation, and two
//! notifications, one each way.
//!
//! The client opens the session with [`StreamArgs`] (payload bytes, ring
//! entries) and donates at least [`session_cost`]. The server creates the
//! dataspace from that donation (so a client cannot revoke the memory under
//! the server), maps it and keeps its end. The client then asks
//! [`StreamRequest::Dataspace`] (the reply carries the dataspace) and
//! [`StreamRequest::SetNotification`] (sending its own notification for
//! acknowledgements; the reply carries the capability that wakes the
//! server). From then on requests travel only through the rings.
//!
//! The server's end never trusts the client: geometry comes from the
//! session arguments, checked here ([`region_len`]) and recomputed by each
//! side; nothing about it is read from shared memory.

use crate::client::{SESSION_CAPS, Session, call, close_session, open_session_with_caps};
use crate::server::Call;
use crate::table::Quota;
use crate::{Interface, SessionError, decode};
use arbor::abi::{CapSlot, ObjectKind, PAGE_SIZE, info, slot};
use arbor::packet_stream::{self, Acknowledgement, Geometry, Opcode, Packet, SharedRegion};
use arbor::{slots, sys};
use serde::{Deserialize, Serialize};

/// Largest shared region a session may ask for.
pub const MAX_REGION: usize = 4 << 20;
/// Most ring entries a session may ask for.
pub const MAX_ENTRIES: u32 = 64;
/// RAM a server needs per session beyond the region: its bookkeeping, the
/// page tables of the mapping, the handles it holds.
pub const SESSION_OVERHEAD: u64 = 16 * 1024;

/// A bulk session's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamArgs {
    /// Bytes of payload the client wants.
    pub payload_len: u32,
    /// Descriptors per ring (a power of two up to [`MAX_ENTRIES`]).
    pub entries: u32,
}

/// Requests on a bulk session's capability (setup only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamRequest {
    /// Hand out the shared dataspace.
    Dataspace,
    /// Signal the notification that rides with this message after
    /// acknowledgements; the reply carries the server's wake-up capability.
    SetNotification,
}

/// Replies on a bulk session's capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamReply {
    /// The message carries the dataspace of `region_len` bytes.
    Dataspace {
        /// Bytes of the region (map all of them).
        region_len: u64,
    },
    /// The message carries the capability that wakes the server.
    Signal,
    /// Refused.
    Error(SessionError),
}

/// The region's size for `args`: page-rounded rings plus payload, within
/// [`MAX_REGION`]; `BadRequest` for anything else.
pub fn region_len(args: &StreamArgs) -> Result<usize, SessionError> {
    if args.entries == 0 || args.entries > MAX_ENTRIES || args.payload_len == 0 {
        return Err(SessionError::BadRequest);
    }
    let wanted = Geometry::region_len_for(args.entries, args.payload_len as usize)
        .ok_or(SessionError::BadRequest)?;
    let len = wanted
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(SessionError::BadRequest)?;
    if len > MAX_REGION {
        return Err(SessionError::BadRequest);
    }
    Ok(len)
}

/// What a session with `args` costs its server: the region, a private copy
/// of one packet as large as the payload area (a server checks a packet
/// only after copying it out of memory the client can change), and the
/// overhead.
pub fn session_cost(args: &StreamArgs) -> Result<Quota, SessionError> {
    Ok(Quota {
        ram: region_len(args)? as u64 + u64::from(args.payload_len) + SESSION_OVERHEAD,
        // The dataspace and the client's notification.
        caps: 2,
    })
}

/// The server's half of one bulk session.
pub struct ServerStream {
    /// The packet stream's server end.
    pub stream: packet_stream::Server,
    dataspace: CapSlot,
    region_len: usize,
    client_signal: Option<CapSlot>,
}

/// A fresh dataspace of `len` bytes in the server's Pd, attached as a shared
/// region: the memory a server makes for a session from that session's
/// donation (an Uplink stream, a Socket window). Refused, with the slot and the
/// dataspace given back, when it cannot be made or attached.
pub fn new_shared_region(len: usize) -> Result<(CapSlot, SharedRegion), SessionError> {
    let dataspace = arbor::guard::SlotGuard::allocate()?;
    sys::create(
        ObjectKind::Dataspace,
        slot::OWN_PD,
        dataspace.slot(),
        len as u64,
    )?;
    let dataspace = dataspace.destroying();
    match SharedRegion::attach(dataspace.slot(), len) {
        Ok(region) => Ok((dataspace.keep(), region)),
        Err(_) => Err(SessionError::InsufficientQuota { needed: len as u64 }),
    }
}

impl ServerStream {
    /// Creates the region for a session whose raw arguments are `args`,
    /// paid from `quota` (already in the server's Pd).
    pub fn create(args: &[u8], quota: Quota) -> Result<ServerStream, SessionError> {
        let args: StreamArgs = decode(args)?;
        quota.require(session_cost(&args)?)?;
        let len = region_len(&args)?;
        let dataspace = slots::allocate().map_err(SessionError::from)?;
        if let Err(error) = sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, len as u64)
        {
            slots::free(dataspace);
            return Err(SessionError::from(error));
        }
        let stream = SharedRegion::attach(dataspace, len)
            .and_then(|region| packet_stream::Server::new(region, args.entries));
        match stream {
            Ok(stream) => Ok(ServerStream {
                stream,
                dataspace,
                region_len: len,
                client_signal: None,
            }),
            Err(_) => {
                let _ = sys::destroy(dataspace);
                slots::release(dataspace);
                Err(SessionError::InsufficientQuota { needed: 4096 })
            }
        }
    }

    /// Answers a setup call; `wake` is the server's wake-up capability.
    pub fn setup(&mut self, call: &mut Call<'_>, wake: CapSlot) -> StreamReply {
        match call.request::<StreamRequest>() {
            Ok(StreamRequest::Dataspace) => {
                call.reply_cap(self.dataspace);
                StreamReply::Dataspace {
                    region_len: self.region_len as u64,
                }
            }
            Ok(StreamRequest::SetNotification) => match call.take_cap() {
                Ok(Some(cap)) => {
                    let is_notification = sys::info(info::CAP_KIND, u64::from(cap.0))
                        .is_ok_and(|(kind, _)| kind == ObjectKind::Notification as u64);
                    if !is_notification {
                        slots::release(cap);
                        return StreamReply::Error(SessionError::BadRequest);
                    }
                    if let Some(old) = self.client_signal.replace(cap) {
                        slots::release(old);
                    }
                    call.reply_cap(wake);
                    StreamReply::Signal
                }
                Ok(None) => StreamReply::Error(SessionError::BadRequest),
                Err(error) => StreamReply::Error(error),
            },
            Err(error) => StreamReply::Error(error),
        }
    }

    /// Wakes the client (after acknowledgements).
    pub fn signal_client(&self) {
        if let Some(cap) = self.client_signal {
            // A client that destroyed its notification only loses its wake-up.
            let _ = sys::signal(cap);
        }
    }

    /// Releases the region and the client's notification (session closed).
    pub fn destroy(self) {
        let ServerStream {
            stream,
            dataspace,
            client_signal,
            ..
        } = self;
        drop(stream);
        let _ = sys::destroy(dataspace);
        slots::release(dataspace);
        if let Some(cap) = client_signal {
            slots::release(cap);
        }
    }
}

/// The client's half of one bulk session: one request at a time,
/// submitted and waited for.
pub struct ClientStream {
    session: Session,
    /// The packet stream's client end.
    pub stream: packet_stream::Client,
    notification: CapSlot,
    wake: CapSlot,
    next_tag: u64,
}

/// How long a client waits for an acknowledgement before it checks that
/// the server is still there (a server that died acknowledges nothing).
pub const LIVENESS_CHECK_MS: u64 = 200;

/// A failed bulk exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkError {
    /// The server died with the request unanswered; the session is gone
    /// (close it and open a new one once the server is back).
    ServerGone,
    /// The session could not be had or set up.
    Session(SessionError),
    /// The stream refused (no payload space, a broken peer).
    Stream(packet_stream::Error),
}

impl core::fmt::Display for BulkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BulkError::ServerGone => f.write_str("the server is gone"),
            BulkError::Session(error) => write!(f, "{error}"),
            BulkError::Stream(error) => write!(f, "packet stream: {error:?}"),
        }
    }
}

impl From<SessionError> for BulkError {
    fn from(error: SessionError) -> Self {
        BulkError::Session(error)
    }
}

impl From<packet_stream::Error> for BulkError {
    fn from(error: packet_stream::Error) -> Self {
        BulkError::Stream(error)
    }
}

impl ClientStream {
    /// Opens a `service` session with `args`, donating what it costs, and
    /// connects the stream.
    pub fn open(service: &str, label: &str, args: StreamArgs) -> Result<Self, BulkError> {
        let cost = session_cost(&args)?;
        // What the parents on the way keep, and what the server's state costs.
        let caps = SESSION_CAPS + cost.caps;
        let session = open_session_with_caps(service, label, &args, cost.ram, caps, None)?;
        match Self::connect(session, args) {
            Ok(stream) => Ok(stream),
            Err(error) => {
                let _ = close_session(session);
                Err(error)
            }
        }
    }

    fn connect(session: Session, args: StreamArgs) -> Result<Self, BulkError> {
        let receive = slots::allocate().map_err(SessionError::from)?;
        let (reply, got) = call::<_, StreamReply>(
            session.cap,
            Interface::Session,
            &StreamRequest::Dataspace,
            None,
            Some(receive),
        )?;
        let offered_len = match (reply, got) {
            (StreamReply::Dataspace { region_len }, true) => region_len as usize,
            (StreamReply::Error(error), _) => return Err(error.into()),
            _ => return Err(SessionError::BadRequest.into()),
        };
        // Our own computation, not the server's word, decides the geometry.
        if offered_len != region_len(&args)? {
            return Err(SessionError::BadRequest.into());
        }
        let region = SharedRegion::attach(receive, offered_len)?;
        let stream = packet_stream::Client::new(region, args.entries)?;
        let notification = slots::allocate().map_err(SessionError::from)?;
        sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)
            .map_err(SessionError::from)?;
        let wake = slots::allocate().map_err(SessionError::from)?;
        let (reply, got) = call::<_, StreamReply>(
            session.cap,
            Interface::Session,
            &StreamRequest::SetNotification,
            Some(notification),
            Some(wake),
        )?;
        match (reply, got) {
            (StreamReply::Signal, true) => {}
            (StreamReply::Error(error), _) => return Err(error.into()),
            _ => return Err(SessionError::BadRequest.into()),
        }
        Ok(ClientStream {
            session,
            stream,
            notification,
            wake,
            next_tag: 1,
        })
    }

    /// Submits `packet` and waits for its acknowledgement.
    pub fn exchange(
        &mut self,
        packet: Packet,
        opcode: Opcode,
        argument: u64,
    ) -> Result<Acknowledgement, BulkError> {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        match self.stream.submit(packet, opcode, tag, argument) {
            Ok(_) => {}
            Err((packet, error)) => {
                let _ = self.stream.free_packet(packet);
                return Err(error.into());
            }
        }
        // Signal every time: the server polls all its sessions when woken,
        // so a spurious wake-up costs one look.
        let _ = sys::signal(self.wake);
        loop {
            if let Some((ack, _signal)) = self.stream.next_acknowledgement()? {
                if ack.tag == tag {
                    return Ok(ack);
                }
                // Not ours (cannot happen with one in flight): give it back.
                let _ = self.stream.free_packet(ack.packet);
                continue;
            }
            let bits = sys::wait_timeout(self.notification, LIVENESS_CHECK_MS)
                .map_err(SessionError::from)?;
            if bits == 0 && !self.server_alive() {
                return Err(BulkError::ServerGone);
            }
        }
    }

    /// Submits `packet` without waking the server or waiting (several
    /// requests in flight: submit them, then [`ClientStream::wake_server`],
    /// then take the acknowledgements with
    /// [`ClientStream::wait_acknowledgement`], matched by the tag returned
    /// here). On error the packet is freed.
    pub fn submit(
        &mut self,
        packet: Packet,
        opcode: Opcode,
        argument: u64,
    ) -> Result<u64, BulkError> {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        match self.stream.submit(packet, opcode, tag, argument) {
            Ok(_) => Ok(tag),
            Err((packet, error)) => {
                let _ = self.stream.free_packet(packet);
                Err(error.into())
            }
        }
    }

    /// Wakes the server to look at what was submitted.
    pub fn wake_server(&self) {
        let _ = sys::signal(self.wake);
    }

    /// The next acknowledgement, whichever request it answers, waiting
    /// for it (and checking that the server is still there).
    pub fn wait_acknowledgement(&mut self) -> Result<Acknowledgement, BulkError> {
        loop {
            if let Some((ack, _signal)) = self.stream.next_acknowledgement()? {
                return Ok(ack);
            }
            let bits = sys::wait_timeout(self.notification, LIVENESS_CHECK_MS)
                .map_err(SessionError::from)?;
            if bits == 0 && !self.server_alive() {
                return Err(BulkError::ServerGone);
            }
        }
    }

    /// Whether the server still answers on the session: a call it cannot
    /// decode gets an error reply from a live server, and a kernel error
    /// from a dead one's destroyed endpoint.
    pub fn server_alive(&self) -> bool {
        call::<_, StreamReply>(self.session.cap, Interface::Session, &u8::MAX, None, None).is_ok()
    }

    /// Closes the session; its quota returns.
    pub fn close(self) -> Result<(), SessionError> {
        slots::release(self.wake);
        close_session(self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_sizes_are_bounded_and_page_rounded() {
        let args = StreamArgs {
            payload_len: 8192,
            entries: 8,
        };
        assert_eq!(region_len(&args), Ok(12288));
        assert_eq!(
            session_cost(&args).map(|q| q.ram),
            Ok(12288 + 8192 + SESSION_OVERHEAD)
        );
        for bad in [
            StreamArgs {
                payload_len: 0,
                entries: 8,
            },
            StreamArgs {
                payload_len: 4096,
                entries: 0,
            },
            StreamArgs {
                payload_len: 4096,
                entries: 3,
            },
            StreamArgs {
                payload_len: 4096,
                entries: 1024,
            },
            StreamArgs {
                payload_len: u32::MAX,
                entries: 8,
            },
        ] {
            assert_eq!(region_len(&bad), Err(SessionError::BadRequest), "{bad:?}");
        }
        // A region's geometry always fits what the session computes.
        let len = region_len(&args).unwrap();
        assert!(Geometry::new(len, args.entries).is_ok());
    }
}
