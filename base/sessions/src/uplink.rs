//! The Uplink session: Ethernet frames between a network driver (the
//! **client**) and a network stack (the **server**), in two packet streams.
//!
//! Why the driver is the client (Genode's Uplink, not its older Nic): the
//! server makes a session's shared memory from the client's donation, and
//! a Pd's death frees what it made. Were the driver the server, its death
//! would free the streams the stack has mapped, and the stack would fault
//! on its next frame. With the stack as server the memory is the stack's:
//! a dying driver only closes a session at the stack (link down; sockets,
//! addresses and TCP state stay), and the restarted driver opens a new one
//! (link up; TCP retransmits what was lost). A driver whose stack dies
//! loses its session and exits; init's policy restarts it.
//!
//! A session owns two streams (`arbor::packet_stream`), both made by the
//! server from the session's donated quota ([`UplinkPort::create`]):
//! - the **up** stream: the driver allocates a payload, writes a frame it
//!   received from the wire into it and submits it with [`FRAME`]; the
//!   stack takes it and acknowledges ([`Status::OK`], or [`FRAME_REFUSED`]
//!   for a length no honest driver sends);
//! - the **down** stream: the driver submits empty buffers of
//!   [`BUFFER_LEN`] bytes with [`BUFFER`]; the stack writes a frame to send
//!   into one, prefixed by its length ([`PrefixedFrame`]), and acknowledges
//!   it. The prefix is the stack's claim, checked before a byte is read.
//!
//! The driver names its MAC address in the session arguments
//! ([`UplinkArgs`]); requests ([`UplinkRequest`]) fetch the two dataspaces,
//! hand the stack the driver's notification, fetch a signal capability for
//! the stack, and report the device's link state.
//!
//! Neither side trusts the other: every length from the peer goes through
//! [`check_frame`] or [`PrefixedFrame::decode`], which return an error value
//! naming what was wrong and never panic.

use crate::SessionError;
use crate::server::Call;
use crate::table::Quota;
use arbor::abi::CapSlot;
use arbor::packet_stream::{self, Geometry, Opcode, Request, Status};
use arbor::{slots, sys};
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "Uplink";

/// Shortest Ethernet frame: destination, source, type.
pub const MIN_FRAME_LEN: usize = 14;
/// Longest Ethernet frame (1500 bytes of payload, a 14-byte header, one
/// 802.1Q tag); no frame check sequence, which the hardware adds.
pub const MAX_FRAME_LEN: usize = 1518;
/// Bytes of the length prefix the stack writes before a frame to send.
pub const LENGTH_PREFIX_LEN: usize = 2;
/// Bytes of one down-stream buffer: the prefix plus the longest frame,
/// rounded up to the packet stream's payload alignment.
pub const BUFFER_LEN: usize = 1536;

/// Opcode of an up-stream packet: a frame from the wire.
pub const FRAME: Opcode = Opcode(1);
/// Opcode of a down-stream packet: fill this buffer with a frame to send.
pub const BUFFER: Opcode = Opcode(2);
/// Acknowledgement status: the frame's length was out of range, not taken.
pub const FRAME_REFUSED: Status = Status(16);

/// Fewest ring entries a stream may have.
pub const MIN_ENTRIES: u32 = 4;
/// Most ring entries a stream may have (frames in flight one way).
pub const MAX_ENTRIES: u32 = 256;

/// A MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// Whether frames from this address could be real: not a group address
    /// (bit 0 of the first byte) and not all zeros.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }
}

impl core::fmt::Display for MacAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// What a driver says when it opens an Uplink session: its MAC address
/// and the ring entries of each stream. Each side derives the streams'
/// sizes from them ([`UplinkArgs::geometry`]), so neither reads geometry
/// from shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkArgs {
    /// The device's address.
    pub mac: MacAddress,
    /// Ring entries of the up stream (a power of two).
    pub up_entries: u32,
    /// Ring entries of the down stream (a power of two).
    pub down_entries: u32,
}

impl UplinkArgs {
    /// Arguments for a device with address `mac` and 16 entries each way.
    pub fn new(mac: MacAddress) -> UplinkArgs {
        UplinkArgs {
            mac,
            up_entries: 16,
            down_entries: 16,
        }
    }

    /// Refuses a group or zero MAC address and entry counts outside
    /// `MIN_ENTRIES..=MAX_ENTRIES` or not a power of two.
    pub fn check(&self) -> Result<(), UplinkError> {
        if !self.mac.is_unicast() {
            return Err(UplinkError::BadMac(self.mac));
        }
        for entries in [self.up_entries, self.down_entries] {
            region_len(entries)?;
        }
        Ok(())
    }

    fn entries(&self, kind: StreamKind) -> u32 {
        match kind {
            StreamKind::Up => self.up_entries,
            StreamKind::Down => self.down_entries,
        }
    }

    /// A stream's geometry: room for every entry's longest frame.
    pub fn geometry(&self, kind: StreamKind) -> Result<Geometry, UplinkError> {
        let entries = self.entries(kind);
        Geometry::new(self.stream_len(kind)?, entries).map_err(|_| UplinkError::BadEntries(entries))
    }

    /// Bytes of the dataspace of one stream (page-rounded).
    pub fn stream_len(&self, kind: StreamKind) -> Result<usize, UplinkError> {
        Ok(page_round(region_len(self.entries(kind))?) as usize)
    }

    /// Bytes of shared memory the session needs (both streams).
    pub fn shared_bytes(&self) -> Result<u64, UplinkError> {
        Ok((self.stream_len(StreamKind::Up)? + self.stream_len(StreamKind::Down)?) as u64)
    }
}

fn page_round(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4096) * 4096
}

fn region_len(entries: u32) -> Result<usize, UplinkError> {
    if !(MIN_ENTRIES..=MAX_ENTRIES).contains(&entries) || !entries.is_power_of_two() {
        return Err(UplinkError::BadEntries(entries));
    }
    let payload = entries as usize * BUFFER_LEN;
    Geometry::region_len_for(entries, payload).ok_or(UplinkError::BadEntries(entries))
}

/// The two streams of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    /// Wire to stack: the driver submits received frames.
    Up,
    /// Stack to wire: the driver submits empty buffers the stack fills.
    Down,
}

/// An Uplink session's requests (from the driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UplinkRequest {
    /// The reply carries the stream's dataspace.
    Stream(StreamKind),
    /// The notification riding with this message is signalled whenever the
    /// stack acknowledged packets.
    SetNotification,
    /// The reply carries a capability that signals the stack: the driver
    /// signals it after submitting.
    ServerSignal,
    /// The device's link went up or down.
    Link {
        /// Whether frames can flow.
        up: bool,
    },
}

/// An Uplink session's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UplinkReply {
    /// For [`UplinkRequest::Stream`]: the message carries the dataspace, of
    /// `region_len` bytes with `entries` ring entries.
    Stream {
        /// Bytes of the dataspace.
        region_len: u64,
        /// Ring entries.
        entries: u32,
    },
    /// Done (the message may carry a capability).
    Done,
    /// Refused.
    Error(SessionError),
}

/// What is wrong with an Uplink argument, frame or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UplinkError {
    /// A stream's entry count is not a power of two in `MIN_ENTRIES..=MAX_ENTRIES`.
    BadEntries(u32),
    /// A frame length outside `MIN_FRAME_LEN..=MAX_FRAME_LEN` (or the buffer).
    FrameLength(usize),
    /// A buffer shorter than the length prefix.
    BufferTooShort(usize),
    /// A MAC address that is a group address or zero.
    BadMac(MacAddress),
    /// A stream reply whose geometry differs from the session's arguments.
    StreamMismatch,
}

impl core::fmt::Display for UplinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadEntries(entries) => write!(
                f,
                "{entries} ring entries (a power of two in {MIN_ENTRIES}..={MAX_ENTRIES} needed)"
            ),
            Self::FrameLength(len) => write!(
                f,
                "frame of {len} bytes (allowed {MIN_FRAME_LEN}..={MAX_FRAME_LEN})"
            ),
            Self::BufferTooShort(len) => write!(f, "buffer of {len} bytes"),
            Self::BadMac(mac) => write!(f, "MAC address {mac} is not unicast"),
            Self::StreamMismatch => write!(f, "stream geometry differs from the session's"),
        }
    }
}

/// Checks the length of a frame from the peer (before reading its bytes).
pub fn check_frame(length: usize) -> Result<(), UplinkError> {
    if (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&length) {
        Ok(())
    } else {
        Err(UplinkError::FrameLength(length))
    }
}

/// Checks a stream reply against the geometry the session's arguments give.
pub fn check_stream_reply(
    expected: &Geometry,
    region_len: u64,
    entries: u32,
) -> Result<(), UplinkError> {
    let matches = expected.entries() == entries
        && usize::try_from(region_len).is_ok_and(|len| {
            Geometry::new(len, entries).is_ok_and(|got| got.payload_len() == expected.payload_len())
        });
    if matches {
        Ok(())
    } else {
        Err(UplinkError::StreamMismatch)
    }
}

/// A frame's place in a down-stream buffer: `[length: u16 LE][frame]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixedFrame {
    /// Bytes of the frame, after the prefix.
    pub length: usize,
}

impl PrefixedFrame {
    /// The prefix the stack writes for a frame of `frame_len` bytes into a
    /// buffer of `buffer_len` bytes (refused if it does not fit or is no
    /// Ethernet frame).
    pub fn encode(frame_len: usize, buffer_len: usize) -> Result<[u8; 2], UplinkError> {
        check_frame(frame_len)?;
        if frame_len + LENGTH_PREFIX_LEN > buffer_len {
            return Err(UplinkError::FrameLength(frame_len));
        }
        Ok((frame_len as u16).to_le_bytes())
    }

    /// Decodes the stack's prefix `prefix` of a buffer of `buffer_len`
    /// bytes: the frame must be an Ethernet frame and fit the buffer.
    pub fn decode(prefix: [u8; 2], buffer_len: usize) -> Result<PrefixedFrame, UplinkError> {
        if buffer_len < LENGTH_PREFIX_LEN {
            return Err(UplinkError::BufferTooShort(buffer_len));
        }
        let length = usize::from(u16::from_le_bytes(prefix));
        check_frame(length)?;
        if length > buffer_len - LENGTH_PREFIX_LEN {
            return Err(UplinkError::FrameLength(length));
        }
        Ok(PrefixedFrame { length })
    }
}

/// What can go wrong on either end of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UplinkFailure {
    /// A session request was refused.
    Session(SessionError),
    /// The peer broke the protocol (a bad length, a foreign geometry).
    Protocol(UplinkError),
    /// The shared memory or the peer's indices are unusable.
    Stream(packet_stream::Error),
}

impl core::fmt::Display for UplinkFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Session(error) => write!(f, "{error}"),
            Self::Protocol(error) => write!(f, "{error}"),
            Self::Stream(error) => write!(f, "packet stream: {error:?}"),
        }
    }
}

impl From<SessionError> for UplinkFailure {
    fn from(error: SessionError) -> Self {
        Self::Session(error)
    }
}

impl From<packet_stream::Error> for UplinkFailure {
    fn from(error: packet_stream::Error) -> Self {
        Self::Stream(error)
    }
}

/// Capabilities a driver donates for a session: the parents' and the
/// stack's share of the session capability, two stream dataspaces, the
/// driver's notification and the stack's signal capability.
pub const SESSION_CAPS: u64 = 8;
/// Capabilities the stack requires of what reaches it (the parents on the
/// way keep their share of [`SESSION_CAPS`]): two dataspaces, the driver's
/// notification and its share of the session capability.
pub const SERVER_CAPS: u64 = 5;
/// The stack's bookkeeping per session, beyond the shared memory.
pub const SESSION_OVERHEAD: u64 = 16 * 1024;

/// RAM a driver donates for a session with `args`: the shared memory plus
/// the stack's bookkeeping.
pub fn session_ram(args: &UplinkArgs) -> Result<u64, UplinkError> {
    Ok(args.shared_bytes()? + SESSION_OVERHEAD)
}

/// The driver's end of an Uplink session: both streams mapped, down
/// buffers submitted, every length from the stack checked.
pub struct UplinkClient {
    /// The session (closing it returns the quota).
    pub session: crate::client::Session,
    up: packet_stream::Client,
    down: packet_stream::Client,
    server_signal: CapSlot,
}

impl UplinkClient {
    /// Opens an Uplink session labelled `label`, hands the stack
    /// `notification` (a capability it signals), maps both streams and
    /// fills the down ring with empty buffers.
    pub fn open(
        label: &str,
        args: UplinkArgs,
        notification: CapSlot,
    ) -> Result<UplinkClient, UplinkFailure> {
        use crate::client::open_session_with_caps;
        args.check().map_err(UplinkFailure::Protocol)?;
        let ram = session_ram(&args).map_err(UplinkFailure::Protocol)?;
        let session = open_session_with_caps(SERVICE, label, &args, ram, SESSION_CAPS, None)?;
        let (reply, _) = request(
            &session,
            &UplinkRequest::SetNotification,
            Some(notification),
        )?;
        expect_done(reply)?;
        let server_signal = slots::allocate().map_err(SessionError::from)?;
        let (reply, got) = crate::client::call::<_, UplinkReply>(
            session.cap,
            crate::Interface::Session,
            &UplinkRequest::ServerSignal,
            None,
            Some(server_signal),
        )?;
        expect_done(reply)?;
        if !got {
            return Err(UplinkFailure::Session(SessionError::BadRequest));
        }
        let up = attach_stream(&session, &args, StreamKind::Up)?;
        let down = attach_stream(&session, &args, StreamKind::Down)?;
        let mut client = UplinkClient {
            session,
            up,
            down,
            server_signal,
        };
        for _ in 0..args.down_entries {
            let packet = client.down.alloc_packet(BUFFER_LEN)?;
            let _ = client
                .down
                .submit(packet, BUFFER, 0, 0)
                .map_err(|(_, error)| error)?;
        }
        client.kick();
        Ok(client)
    }

    /// As [`UplinkClient::open`], but waits (up to a second) while the
    /// stack still holds the session of this driver's previous incarnation:
    /// init closes it there before, or while, it restarts the driver.
    pub fn open_when_free(
        label: &str,
        args: UplinkArgs,
        notification: CapSlot,
    ) -> Result<UplinkClient, UplinkFailure> {
        let mut attempts = 0;
        loop {
            match UplinkClient::open(label, args, notification) {
                Err(UplinkFailure::Session(SessionError::AlreadyClaimed)) if attempts < 100 => {
                    attempts += 1;
                    crate::client::pause(10);
                }
                result => return result,
            }
        }
    }

    /// Signals the stack that submissions wait.
    pub fn kick(&self) {
        // A stack that destroyed its notification only loses the wake-up.
        let _ = sys::signal(self.server_signal);
    }

    /// Tells the stack the link went up or down.
    pub fn set_link(&self, up: bool) -> Result<(), UplinkFailure> {
        let (reply, _) = request(&self.session, &UplinkRequest::Link { up }, None)?;
        expect_done(reply)
    }

    /// Queues one frame from the wire for the stack; `Ok(false)` when the
    /// ring or payload is full (the frame is dropped, as a busy NIC drops).
    /// Call [`UplinkClient::kick`] after a batch.
    pub fn deliver(&mut self, frame: &[u8]) -> Result<bool, UplinkFailure> {
        check_frame(frame.len()).map_err(UplinkFailure::Protocol)?;
        while let Some((ack, _)) = self.up.next_acknowledgement()? {
            self.up.free_packet(ack.packet)?;
        }
        let packet = match self.up.alloc_packet(frame.len()) {
            Ok(packet) => packet,
            Err(packet_stream::Error::PayloadExhausted) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        self.up.write(&packet, 0, frame)?;
        match self.up.submit(packet, FRAME, 0, 0) {
            Ok(_) => Ok(true),
            Err((packet, packet_stream::Error::RingFull)) => {
                self.up.free_packet(packet)?;
                Ok(false)
            }
            Err((_, error)) => Err(error.into()),
        }
    }

    /// The next frame the stack wants sent, copied into `out` (at least
    /// [`MAX_FRAME_LEN`] bytes); its length, or `None` when none
    /// waits. The buffer goes straight back to the stack.
    pub fn next_to_send(&mut self, out: &mut [u8]) -> Result<Option<usize>, UplinkFailure> {
        loop {
            let Some((ack, _)) = self.down.next_acknowledgement()? else {
                return Ok(None);
            };
            let packet = ack.packet;
            let frame = if ack.status == Status::OK {
                let mut prefix = [0u8; LENGTH_PREFIX_LEN];
                self.down.read(&packet, 0, &mut prefix)?;
                let frame = PrefixedFrame::decode(prefix, packet.length())
                    .map_err(UplinkFailure::Protocol)?;
                let length = frame.length.min(out.len());
                self.down
                    .read(&packet, LENGTH_PREFIX_LEN, &mut out[..length])?;
                Some(length)
            } else {
                None
            };
            let _ = self
                .down
                .submit(packet, BUFFER, 0, 0)
                .map_err(|(_, error)| error)?;
            if frame.is_some() {
                return Ok(frame);
            }
        }
    }
}

fn request(
    session: &crate::client::Session,
    request: &UplinkRequest,
    cap: Option<CapSlot>,
) -> Result<(UplinkReply, bool), UplinkFailure> {
    Ok(crate::client::call::<_, UplinkReply>(
        session.cap,
        crate::Interface::Session,
        request,
        cap,
        None,
    )?)
}

fn expect_done(reply: UplinkReply) -> Result<(), UplinkFailure> {
    match reply {
        UplinkReply::Done => Ok(()),
        UplinkReply::Error(error) => Err(UplinkFailure::Session(error)),
        _ => Err(UplinkFailure::Session(SessionError::BadRequest)),
    }
}

fn attach_stream(
    session: &crate::client::Session,
    args: &UplinkArgs,
    kind: StreamKind,
) -> Result<packet_stream::Client, UplinkFailure> {
    let geometry = args.geometry(kind).map_err(UplinkFailure::Protocol)?;
    let dataspace = slots::allocate().map_err(SessionError::from)?;
    let (reply, got) = crate::client::call::<_, UplinkReply>(
        session.cap,
        crate::Interface::Session,
        &UplinkRequest::Stream(kind),
        None,
        Some(dataspace),
    )?;
    let UplinkReply::Stream {
        region_len,
        entries,
    } = reply
    else {
        return Err(UplinkFailure::Session(SessionError::BadRequest));
    };
    if !got {
        return Err(UplinkFailure::Session(SessionError::BadRequest));
    }
    check_stream_reply(&geometry, region_len, entries).map_err(UplinkFailure::Protocol)?;
    let region = packet_stream::SharedRegion::attach(dataspace, region_len as usize)?;
    Ok(packet_stream::Client::new(region, entries)?)
}

/// The stack's end of an Uplink session: both streams, made here from the
/// driver's donation, and the down buffers the driver lent.
pub struct UplinkPort {
    /// The driver's arguments (its MAC address among them).
    pub args: UplinkArgs,
    /// Whether the driver last reported its link up.
    pub link_up: bool,
    up: packet_stream::Server,
    down: packet_stream::Server,
    up_dataspace: CapSlot,
    down_dataspace: CapSlot,
    /// Down buffers the driver submitted, waiting for a frame.
    buffers: alloc::collections::VecDeque<Request>,
    notification: Option<CapSlot>,
    /// Acknowledgements were written since the driver was last woken.
    wake: bool,
}

impl UplinkPort {
    /// Makes a session's streams for `args` (raw, as the driver sent
    /// them), paid from `quota` (already in the stack's Pd).
    pub fn create(args: &[u8], quota: Quota) -> Result<UplinkPort, SessionError> {
        let args: UplinkArgs = crate::decode(args)?;
        args.check().map_err(|_| SessionError::BadRequest)?;
        let lengths = args
            .stream_len(StreamKind::Up)
            .and_then(|up| Ok((up, args.stream_len(StreamKind::Down)?)));
        let (up_len, down_len) = lengths.map_err(|_| SessionError::BadRequest)?;
        quota.require(Quota {
            ram: (up_len + down_len) as u64 + SESSION_OVERHEAD,
            caps: SERVER_CAPS,
        })?;
        let (up_dataspace, up_region) = crate::bulk::new_shared_region(up_len)?;
        let destroy = |cap: CapSlot| {
            let _ = sys::destroy(cap);
            slots::release(cap);
        };
        let (down_dataspace, down_region) = match crate::bulk::new_shared_region(down_len) {
            Ok(made) => made,
            Err(error) => {
                drop(up_region);
                destroy(up_dataspace);
                return Err(error);
            }
        };
        let streams = packet_stream::Server::new(up_region, args.up_entries).and_then(|up| {
            Ok((
                up,
                packet_stream::Server::new(down_region, args.down_entries)?,
            ))
        });
        let (up, down) = match streams {
            Ok(streams) => streams,
            Err(_) => {
                destroy(up_dataspace);
                destroy(down_dataspace);
                return Err(SessionError::BadRequest);
            }
        };
        Ok(UplinkPort {
            args,
            link_up: true,
            up,
            down,
            up_dataspace,
            down_dataspace,
            buffers: alloc::collections::VecDeque::new(),
            notification: None,
            wake: false,
        })
    }

    /// Answers one of the driver's requests; `kick` is the capability the
    /// driver gets to signal the stack.
    pub fn handle(&mut self, call: &mut Call<'_>, kick: CapSlot) -> UplinkReply {
        match call.request::<UplinkRequest>() {
            Ok(UplinkRequest::Stream(kind)) => {
                let cap = match kind {
                    StreamKind::Up => self.up_dataspace,
                    StreamKind::Down => self.down_dataspace,
                };
                match self.args.stream_len(kind) {
                    Ok(len) => {
                        call.reply_cap(cap);
                        UplinkReply::Stream {
                            region_len: len as u64,
                            entries: self.args.entries(kind),
                        }
                    }
                    Err(_) => UplinkReply::Error(SessionError::BadRequest),
                }
            }
            Ok(UplinkRequest::SetNotification) => match call.take_cap() {
                Ok(Some(cap)) => {
                    if let Some(old) = self.notification.replace(cap) {
                        slots::release(old);
                    }
                    UplinkReply::Done
                }
                Ok(None) => UplinkReply::Error(SessionError::BadRequest),
                Err(error) => UplinkReply::Error(error),
            },
            Ok(UplinkRequest::ServerSignal) => {
                call.reply_cap(kick);
                UplinkReply::Done
            }
            Ok(UplinkRequest::Link { up }) => {
                self.link_up = up;
                UplinkReply::Done
            }
            Err(error) => UplinkReply::Error(error),
        }
    }

    /// The next frame the driver delivered, copied into `out` (at least
    /// [`MAX_FRAME_LEN`] bytes); `Ok(None)` when none waits. A frame of a
    /// length no honest driver sends (or with a foreign opcode or a bad
    /// descriptor) is acknowledged as refused and reported as
    /// `Ok(Some(Err(..)))` so the caller can log it; `Err` means the ring
    /// itself is unusable.
    #[allow(clippy::type_complexity)]
    pub fn take_frame(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<Result<usize, UplinkError>>, packet_stream::Error> {
        let Some((request, _)) = self.up.next_request()? else {
            return Ok(None);
        };
        self.wake = true;
        let checked = match request.payload() {
            Ok(packet) if request.opcode() == FRAME => {
                check_frame(packet.length()).and_then(|()| {
                    (packet.length() <= out.len())
                        .then_some(packet.length())
                        .ok_or(UplinkError::FrameLength(packet.length()))
                })
            }
            Ok(packet) => Err(UplinkError::FrameLength(packet.length())),
            Err(_) => Err(UplinkError::BufferTooShort(0)),
        };
        let length = match checked {
            Ok(length) => length,
            Err(error) => {
                let status = if request.payload().is_err() {
                    Status::BAD_DESCRIPTOR
                } else {
                    FRAME_REFUSED
                };
                let _ = self.up.acknowledge(request, status)?;
                return Ok(Some(Err(error)));
            }
        };
        let read = request
            .payload()
            .and_then(|packet| self.up.read(packet, 0, &mut out[..length]));
        let status = if read.is_ok() {
            Status::OK
        } else {
            Status::BAD_DESCRIPTOR
        };
        let _ = self.up.acknowledge(request, status)?;
        Ok(Some(
            read.map(|()| length)
                .map_err(|_| UplinkError::FrameLength(length)),
        ))
    }

    /// Takes the down buffers the driver submitted since the last look.
    pub fn take_buffers(&mut self) -> Result<(), packet_stream::Error> {
        while let Some((request, _)) = self.down.next_request()? {
            self.buffers.push_back(request);
        }
        Ok(())
    }

    /// Whether a down buffer waits for a frame.
    pub fn can_send(&self) -> bool {
        !self.buffers.is_empty()
    }

    /// Writes `frame` into the oldest down buffer; `Ok(false)` when none
    /// waits (take them first with [`UplinkPort::take_buffers`]) or the
    /// buffer was bad (acknowledged as such).
    pub fn send(&mut self, frame: &[u8]) -> Result<bool, packet_stream::Error> {
        let Some(request) = self.buffers.pop_front() else {
            return Ok(false);
        };
        let written = request.payload().and_then(|packet| {
            let prefix = PrefixedFrame::encode(frame.len(), packet.length())
                .map_err(|_| packet_stream::Error::OutOfPacket)?;
            self.down.write(packet, 0, &prefix)?;
            self.down.write(packet, LENGTH_PREFIX_LEN, frame)
        });
        let status = match written {
            Ok(()) => Status::OK,
            Err(_) => Status::BAD_DESCRIPTOR,
        };
        let _ = self.down.acknowledge(request, status)?;
        self.wake = true;
        Ok(written.is_ok())
    }

    /// Signals the driver if acknowledgements were written since the last
    /// call.
    pub fn wake_driver(&mut self) {
        if core::mem::take(&mut self.wake)
            && let Some(notification) = self.notification
        {
            let _ = sys::signal(notification);
        }
    }

    /// Unmaps and destroys the streams (the session closed).
    pub fn release(self) {
        let UplinkPort {
            up,
            down,
            up_dataspace,
            down_dataspace,
            notification,
            buffers,
            ..
        } = self;
        drop(buffers);
        drop(up);
        drop(down);
        for cap in [up_dataspace, down_dataspace] {
            let _ = sys::destroy(cap);
            slots::release(cap);
        }
        if let Some(cap) = notification {
            slots::release(cap);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::test_support::Random;
    use crate::{decode, encode};

    const MAC: MacAddress = MacAddress([2, 0, 0, 0, 0, 1]);

    #[test]
    fn default_args_fit_and_are_page_rounded() {
        let args = UplinkArgs::new(MAC);
        args.check().unwrap();
        let bytes = args.shared_bytes().unwrap();
        assert_eq!(bytes % 4096, 0);
        let up = args.geometry(StreamKind::Up).unwrap();
        assert!(up.payload_len() >= 16 * BUFFER_LEN);
        assert_eq!(up.entries(), 16);
        assert!(session_ram(&args).unwrap() > bytes);
    }

    #[test]
    fn bad_entry_counts_and_macs_are_refused() {
        for entries in [0, 1, 2, 3, 5, 12, 512, u32::MAX] {
            let args = UplinkArgs {
                up_entries: entries,
                ..UplinkArgs::new(MAC)
            };
            assert_eq!(args.check(), Err(UplinkError::BadEntries(entries)));
            assert_eq!(args.shared_bytes(), Err(UplinkError::BadEntries(entries)));
            assert!(args.geometry(StreamKind::Up).is_err());
        }
        let group = MacAddress([1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(
            UplinkArgs::new(group).check(),
            Err(UplinkError::BadMac(group))
        );
        assert!(UplinkArgs::new(MacAddress([0; 6])).check().is_err());
        assert_eq!(std::format!("{MAC}"), "02:00:00:00:00:01");
    }

    #[test]
    fn frame_lengths_are_checked_both_ways() {
        assert!(check_frame(13).is_err());
        assert!(check_frame(14).is_ok());
        assert!(check_frame(1518).is_ok());
        assert!(check_frame(1519).is_err());
        let prefix = PrefixedFrame::encode(60, BUFFER_LEN).unwrap();
        assert_eq!(
            PrefixedFrame::decode(prefix, BUFFER_LEN),
            Ok(PrefixedFrame { length: 60 })
        );
        // A stack claiming more than the buffer holds is caught.
        let prefix = 1518u16.to_le_bytes();
        assert_eq!(
            PrefixedFrame::decode(prefix, 100),
            Err(UplinkError::FrameLength(1518))
        );
        assert_eq!(
            PrefixedFrame::decode(prefix, 1),
            Err(UplinkError::BufferTooShort(1))
        );
        assert!(PrefixedFrame::encode(1518, 1519).is_err());
        assert!(PrefixedFrame::decode(u16::MAX.to_le_bytes(), usize::MAX).is_err());
    }

    #[test]
    fn stream_replies_must_match_the_arguments() {
        let args = UplinkArgs::new(MAC);
        let geometry = args.geometry(StreamKind::Down).unwrap();
        let len = args.shared_bytes().unwrap() / 2;
        assert_eq!(check_stream_reply(&geometry, len, 16), Ok(()));
        assert_eq!(
            check_stream_reply(&geometry, len, 8),
            Err(UplinkError::StreamMismatch)
        );
        assert_eq!(
            check_stream_reply(&geometry, 4096, 16),
            Err(UplinkError::StreamMismatch)
        );
        assert_eq!(
            check_stream_reply(&geometry, u64::MAX, 16),
            Err(UplinkError::StreamMismatch)
        );
    }

    #[test]
    fn messages_round_trip() {
        let mut buffer = [0u8; 64];
        for request in [
            UplinkRequest::Stream(StreamKind::Down),
            UplinkRequest::SetNotification,
            UplinkRequest::ServerSignal,
            UplinkRequest::Link { up: false },
        ] {
            let len = encode(&request, &mut buffer).unwrap();
            assert_eq!(decode::<UplinkRequest>(&buffer[..len]), Ok(request));
        }
        let args = UplinkArgs::new(MAC);
        let len = encode(&args, &mut buffer).unwrap();
        assert_eq!(decode::<UplinkArgs>(&buffer[..len]), Ok(args));
    }

    /// Thousands of arbitrary inputs through every decoder and check: each
    /// ends in a value or an error, never a panic, and whatever is accepted
    /// keeps the invariants the users rely on.
    #[test]
    fn fuzz_decoders_never_panic() {
        let mut random = Random::new(0x6e69_635f_6675_7a7a);
        let mut frames_accepted = 0;
        for _ in 0..20_000 {
            let bytes = random.bytes(24);
            let _ = decode::<UplinkRequest>(&bytes);
            let _ = decode::<UplinkReply>(&bytes);
            if let Ok(args) = decode::<UplinkArgs>(&bytes)
                && args.check().is_ok()
            {
                assert!(args.mac.is_unicast());
                assert!(args.shared_bytes().is_ok());
            }
            let buffer_len = random.below(4000) as usize;
            let prefix = [random.byte(), random.byte()];
            if let Ok(frame) = PrefixedFrame::decode(prefix, buffer_len) {
                assert!(frame.length + LENGTH_PREFIX_LEN <= buffer_len);
                assert!(frame.length >= MIN_FRAME_LEN);
                frames_accepted += 1;
            }
            let args = UplinkArgs {
                mac: MAC,
                up_entries: random.below(600) as u32,
                down_entries: 1 << random.below(10),
            };
            if let Ok(geometry) = args.geometry(StreamKind::Up) {
                let _ = check_stream_reply(&geometry, random.next(), random.next() as u32);
            }
        }
        // The fuzzer reached the accepting path too, not only refusals.
        assert!(frames_accepted > 0);
    }
}
