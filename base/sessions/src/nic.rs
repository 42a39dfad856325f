//! The Nic session: Ethernet frames between a network driver (the server)
//! and a network stack (the client), in two packet streams.
//!
//! A session owns two packet streams (`arbor::packet_stream`), both made
//! by the server from the session's donated quota so that a client cannot
//! revoke the memory under the driver:
//! - the **transmit** stream: the client allocates a payload, writes one
//!   frame into it and submits it with [`TRANSMIT`]; the server sends it and
//!   acknowledges ([`Status::OK`], or [`FRAME_REFUSED`] for a length no
//!   honest client sends);
//! - the **receive** stream: the client submits empty buffers of
//!   [`RECEIVE_BUFFER_LEN`] bytes with [`RECEIVE`]; the server writes a
//!   received frame into one, prefixed by its length ([`ReceivedFrame`]),
//!   and acknowledges it. The length prefix is the server's claim and the
//!   client checks it against the buffer before it reads a byte.
//!
//! Requests ([`NicRequest`]) fetch the two dataspaces, hand the server the
//! client's notification (signalled when acknowledgements wait) and fetch a
//! signal capability for the server (for the client's submits), and report
//! the MAC address and link state ([`NicInfo`]).
//!
//! Neither side trusts the other: every length from the peer goes through
//! [`check_transmit_frame`] or [`ReceivedFrame::decode`], which return an
//! error value naming what was wrong and never panic.

use crate::SessionError;
use arbor::packet_stream::{Geometry, Opcode, Status};
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "Nic";

/// Shortest Ethernet frame a client may submit: destination, source, type.
pub const MIN_FRAME_LEN: usize = 14;
/// Longest Ethernet frame (1500 bytes of payload, a 14-byte header, one
/// 802.1Q tag); no frame check sequence, which the hardware adds.
pub const MAX_FRAME_LEN: usize = 1518;
/// Bytes of the length prefix a server writes before a received frame.
pub const LENGTH_PREFIX_LEN: usize = 2;
/// Bytes of one receive buffer: the prefix plus the longest frame, rounded
/// up to the packet stream's payload alignment.
pub const RECEIVE_BUFFER_LEN: usize = 1536;

/// Opcode of a transmit-stream packet: send this frame.
pub const TRANSMIT: Opcode = Opcode(1);
/// Opcode of a receive-stream packet: fill this buffer with a frame.
pub const RECEIVE: Opcode = Opcode(2);
/// Acknowledgement status: the frame's length was out of range, not sent.
pub const FRAME_REFUSED: Status = Status(16);
/// Acknowledgement status: the session is closing; the buffer comes back empty.
pub const RECEIVE_CANCELLED: Status = Status(17);

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

/// What a client asks for when it opens a Nic session: the ring entries of
/// each stream. The server derives each stream's size from them
/// ([`NicArgs::transmit_geometry`], [`NicArgs::receive_geometry`]) so that
/// neither side reads geometry from shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicArgs {
    /// Ring entries of the transmit stream (a power of two).
    pub transmit_entries: u32,
    /// Ring entries of the receive stream (a power of two).
    pub receive_entries: u32,
}

impl Default for NicArgs {
    fn default() -> Self {
        NicArgs {
            transmit_entries: 16,
            receive_entries: 16,
        }
    }
}

impl NicArgs {
    /// Refuses entry counts outside `MIN_ENTRIES..=MAX_ENTRIES` or not a
    /// power of two.
    pub fn check(&self) -> Result<(), NicError> {
        for entries in [self.transmit_entries, self.receive_entries] {
            if !(MIN_ENTRIES..=MAX_ENTRIES).contains(&entries) || !entries.is_power_of_two() {
                return Err(NicError::BadEntries(entries));
            }
        }
        Ok(())
    }

    /// The transmit stream's geometry: room for every entry's longest frame.
    pub fn transmit_geometry(&self) -> Result<Geometry, NicError> {
        stream_geometry(self.transmit_entries)
    }

    /// The receive stream's geometry: one receive buffer per entry.
    pub fn receive_geometry(&self) -> Result<Geometry, NicError> {
        stream_geometry(self.receive_entries)
    }

    /// Bytes of the dataspace of one stream (page-rounded).
    pub fn stream_len(&self, kind: StreamKind) -> Result<usize, NicError> {
        let entries = match kind {
            StreamKind::Transmit => self.transmit_entries,
            StreamKind::Receive => self.receive_entries,
        };
        Ok(page_round(region_len(entries)?) as usize)
    }

    /// Bytes of shared memory the session needs (both streams, page-rounded):
    /// what the server asks of the donated quota.
    pub fn shared_bytes(&self) -> Result<u64, NicError> {
        let transmit = region_len(self.transmit_entries)?;
        let receive = region_len(self.receive_entries)?;
        Ok(page_round(transmit) + page_round(receive))
    }
}

fn page_round(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4096) * 4096
}

fn region_len(entries: u32) -> Result<usize, NicError> {
    if !(MIN_ENTRIES..=MAX_ENTRIES).contains(&entries) || !entries.is_power_of_two() {
        return Err(NicError::BadEntries(entries));
    }
    let payload = entries as usize * RECEIVE_BUFFER_LEN;
    Geometry::region_len_for(entries, payload).ok_or(NicError::BadEntries(entries))
}

fn stream_geometry(entries: u32) -> Result<Geometry, NicError> {
    let len = page_round(region_len(entries)?) as usize;
    Geometry::new(len, entries).map_err(|_| NicError::BadEntries(entries))
}

/// The two streams of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    /// Client to wire.
    Transmit,
    /// Wire to client.
    Receive,
}

/// A Nic session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NicRequest {
    /// MAC address and link state.
    Info,
    /// The reply carries the stream's dataspace.
    Stream(StreamKind),
    /// The notification riding with this message is signalled whenever the
    /// server acknowledged packets or the link state changed.
    SetNotification,
    /// The reply carries a capability that signals the server: the client
    /// signals it after a submit that returned `Signal::Peer`.
    ServerSignal,
}

/// The MAC address and link state of the device behind a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicInfo {
    /// The device's address.
    pub mac: MacAddress,
    /// Whether frames can flow.
    pub link_up: bool,
    /// Longest frame the device sends (≤ [`MAX_FRAME_LEN`]).
    pub max_frame_len: u16,
}

impl NicInfo {
    /// Refuses what no honest server reports: a group or zero MAC address,
    /// or a frame limit outside `MIN_FRAME_LEN..=MAX_FRAME_LEN`.
    pub fn check(&self) -> Result<(), NicError> {
        if !self.mac.is_unicast() {
            return Err(NicError::BadMac(self.mac));
        }
        let limit = usize::from(self.max_frame_len);
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&limit) {
            return Err(NicError::FrameLength(limit));
        }
        Ok(())
    }
}

/// A Nic session's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NicReply {
    /// For [`NicRequest::Info`].
    Info(NicInfo),
    /// For [`NicRequest::Stream`]: the message carries the dataspace, of
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

/// What is wrong with a Nic argument, frame or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NicError {
    /// A stream's entry count is not a power of two in `MIN_ENTRIES..=MAX_ENTRIES`.
    BadEntries(u32),
    /// A frame length outside `MIN_FRAME_LEN..=MAX_FRAME_LEN` (or the buffer).
    FrameLength(usize),
    /// A receive buffer shorter than the length prefix.
    BufferTooShort(usize),
    /// A MAC address that is a group address or zero.
    BadMac(MacAddress),
    /// A stream reply whose geometry differs from the session's arguments.
    StreamMismatch,
}

impl core::fmt::Display for NicError {
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
            Self::BufferTooShort(len) => write!(f, "receive buffer of {len} bytes"),
            Self::BadMac(mac) => write!(f, "MAC address {mac} is not unicast"),
            Self::StreamMismatch => write!(f, "stream geometry differs from the session's"),
        }
    }
}

/// Checks the length of a frame a client submitted for transmission (the
/// server calls it on the descriptor's length before reading the payload).
pub fn check_transmit_frame(length: usize) -> Result<(), NicError> {
    if (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&length) {
        Ok(())
    } else {
        Err(NicError::FrameLength(length))
    }
}

/// Checks a stream reply against the geometry the session's arguments give.
pub fn check_stream_reply(
    expected: &Geometry,
    region_len: u64,
    entries: u32,
) -> Result<(), NicError> {
    let matches = expected.entries() == entries
        && usize::try_from(region_len).is_ok_and(|len| {
            Geometry::new(len, entries).is_ok_and(|got| got.payload_len() == expected.payload_len())
        });
    if matches {
        Ok(())
    } else {
        Err(NicError::StreamMismatch)
    }
}

/// A received frame's place in a receive buffer: `[length: u16 LE][frame]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// Bytes of the frame, after the prefix.
    pub length: usize,
}

impl ReceivedFrame {
    /// The prefix a server writes for a frame of `frame_len` bytes into a
    /// buffer of `buffer_len` bytes (refused if it does not fit or is no
    /// Ethernet frame).
    pub fn encode(frame_len: usize, buffer_len: usize) -> Result<[u8; 2], NicError> {
        check_transmit_frame(frame_len)?;
        if frame_len + LENGTH_PREFIX_LEN > buffer_len {
            return Err(NicError::FrameLength(frame_len));
        }
        Ok((frame_len as u16).to_le_bytes())
    }

    /// Decodes the server's prefix `prefix` of a buffer of `buffer_len`
    /// bytes: the frame must be an Ethernet frame and fit the buffer.
    pub fn decode(prefix: [u8; 2], buffer_len: usize) -> Result<ReceivedFrame, NicError> {
        if buffer_len < LENGTH_PREFIX_LEN {
            return Err(NicError::BufferTooShort(buffer_len));
        }
        let length = usize::from(u16::from_le_bytes(prefix));
        check_transmit_frame(length)?;
        if length > buffer_len - LENGTH_PREFIX_LEN {
            return Err(NicError::FrameLength(length));
        }
        Ok(ReceivedFrame { length })
    }
}

/// The client's end of a Nic session: both streams mapped, receive
/// buffers submitted, every length from the server checked.
pub struct NicClient {
    /// The session (closing it returns the quota).
    pub session: crate::client::Session,
    /// The device's address and link state, as checked at open.
    pub info: NicInfo,
    transmit: arbor::packet_stream::Client,
    receive: arbor::packet_stream::Client,
    server_signal: arbor::abi::CapSlot,
}

/// What can go wrong on the client's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicClientError {
    /// A session request was refused.
    Session(SessionError),
    /// The server broke the protocol (a bad length, a foreign geometry).
    Protocol(NicError),
    /// The shared memory or the peer's indices are unusable; reconnect.
    Stream(arbor::packet_stream::Error),
}

impl core::fmt::Display for NicClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Session(error) => write!(f, "{error}"),
            Self::Protocol(error) => write!(f, "{error}"),
            Self::Stream(error) => write!(f, "packet stream: {error:?}"),
        }
    }
}

impl From<SessionError> for NicClientError {
    fn from(error: SessionError) -> Self {
        Self::Session(error)
    }
}

impl From<arbor::packet_stream::Error> for NicClientError {
    fn from(error: arbor::packet_stream::Error) -> Self {
        Self::Stream(error)
    }
}

/// Capabilities a client donates for a session: the parents' and the
/// server's share of the session capability, two stream dataspaces, the
/// client's notification and the server's signal capability.
pub const SESSION_CAPS: u64 = 8;
/// Capabilities a server requires of what reaches it (the parents on the
/// way keep their share of [`SESSION_CAPS`]): two dataspaces, the client's
/// notification and its share of the session capability.
pub const SERVER_CAPS: u64 = 5;

/// RAM a client donates for a session with `args`: the shared memory plus
/// the server's bookkeeping.
pub fn session_ram(args: &NicArgs) -> Result<u64, NicError> {
    Ok(args.shared_bytes()? + 16 * 1024)
}

impl NicClient {
    /// Opens a Nic session labelled `label`, hands the server `notification`
    /// (a capability the server signals), maps both streams and fills the
    /// receive ring with empty buffers.
    pub fn open(
        label: &str,
        args: NicArgs,
        notification: arbor::abi::CapSlot,
    ) -> Result<NicClient, NicClientError> {
        use crate::Interface;
        use crate::client::{call, open_session_with_caps};
        args.check().map_err(NicClientError::Protocol)?;
        let ram = session_ram(&args).map_err(NicClientError::Protocol)?;
        let session = open_session_with_caps(SERVICE, label, &args, ram, SESSION_CAPS, None)?;
        let (reply, _) = call::<_, NicReply>(
            session.cap,
            Interface::Session,
            &NicRequest::SetNotification,
            Some(notification),
            None,
        )?;
        expect_done(reply)?;
        let server_signal = arbor::slots::allocate().map_err(SessionError::from)?;
        let (reply, got) = call::<_, NicReply>(
            session.cap,
            Interface::Session,
            &NicRequest::ServerSignal,
            None,
            Some(server_signal),
        )?;
        expect_done(reply)?;
        if !got {
            return Err(NicClientError::Session(SessionError::BadRequest));
        }
        let (info, _) = call::<_, NicReply>(
            session.cap,
            Interface::Session,
            &NicRequest::Info,
            None,
            None,
        )?;
        let NicReply::Info(info) = info else {
            return Err(NicClientError::Session(SessionError::BadRequest));
        };
        info.check().map_err(NicClientError::Protocol)?;
        let transmit = attach_stream(&session, StreamKind::Transmit, &args.transmit_geometry())?;
        let receive = attach_stream(&session, StreamKind::Receive, &args.receive_geometry())?;
        let mut client = NicClient {
            session,
            info,
            transmit,
            receive,
            server_signal,
        };
        for _ in 0..args.receive_entries {
            client.submit_receive_buffer()?;
        }
        client.kick();
        Ok(client)
    }

    fn submit_receive_buffer(&mut self) -> Result<(), NicClientError> {
        let packet = self.receive.alloc_packet(RECEIVE_BUFFER_LEN)?;
        let _ = self
            .receive
            .submit(packet, RECEIVE, 0, 0)
            .map_err(|(_, error)| error)?;
        Ok(())
    }

    /// Signals the server that submissions wait.
    pub fn kick(&self) {
        // A server that destroyed its notification only loses the wake-up.
        let _ = arbor::sys::signal(self.server_signal);
    }

    /// Frees transmit packets the server acknowledged.
    fn reclaim(&mut self) -> Result<(), NicClientError> {
        while let Some((ack, _)) = self.transmit.next_acknowledgement()? {
            self.transmit.free_packet(ack.packet)?;
        }
        Ok(())
    }

    /// Queues one frame for sending; `Ok(false)` when the ring or payload
    /// is full (try after the next notification). Call [`NicClient::kick`]
    /// after a batch.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<bool, NicClientError> {
        check_transmit_frame(frame.len()).map_err(NicClientError::Protocol)?;
        self.reclaim()?;
        let packet = match self.transmit.alloc_packet(frame.len()) {
            Ok(packet) => packet,
            Err(arbor::packet_stream::Error::PayloadExhausted) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        self.transmit.write(&packet, 0, frame)?;
        match self.transmit.submit(packet, TRANSMIT, 0, 0) {
            Ok(_) => Ok(true),
            Err((packet, arbor::packet_stream::Error::RingFull)) => {
                self.transmit.free_packet(packet)?;
                Ok(false)
            }
            Err((_, error)) => Err(error.into()),
        }
    }

    /// The next received frame, copied into `out` (at least
    /// [`MAX_FRAME_LEN`] bytes); its length, or `None` when none waits. The
    /// buffer goes straight back to the server.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, NicClientError> {
        loop {
            let Some((ack, _)) = self.receive.next_acknowledgement()? else {
                return Ok(None);
            };
            let packet = ack.packet;
            let frame = if ack.status == Status::OK {
                let mut prefix = [0u8; LENGTH_PREFIX_LEN];
                self.receive.read(&packet, 0, &mut prefix)?;
                let frame = ReceivedFrame::decode(prefix, packet.length())
                    .map_err(NicClientError::Protocol)?;
                let length = frame.length.min(out.len());
                self.receive
                    .read(&packet, LENGTH_PREFIX_LEN, &mut out[..length])?;
                Some(length)
            } else {
                None
            };
            let _ = self
                .receive
                .submit(packet, RECEIVE, 0, 0)
                .map_err(|(_, error)| error)?;
            self.kick();
            if frame.is_some() {
                return Ok(frame);
            }
        }
    }
}

fn expect_done(reply: NicReply) -> Result<(), NicClientError> {
    match reply {
        NicReply::Done => Ok(()),
        NicReply::Error(error) => Err(NicClientError::Session(error)),
        _ => Err(NicClientError::Session(SessionError::BadRequest)),
    }
}

fn attach_stream(
    session: &crate::client::Session,
    kind: StreamKind,
    geometry: &Result<Geometry, NicError>,
) -> Result<arbor::packet_stream::Client, NicClientError> {
    use crate::Interface;
    use crate::client::call;
    let geometry = geometry
        .as_ref()
        .map_err(|error| NicClientError::Protocol(*error))?;
    let dataspace = arbor::slots::allocate().map_err(SessionError::from)?;
    let (reply, got) = call::<_, NicReply>(
        session.cap,
        Interface::Session,
        &NicRequest::Stream(kind),
        None,
        Some(dataspace),
    )?;
    let NicReply::Stream {
        region_len,
        entries,
    } = reply
    else {
        return Err(NicClientError::Session(SessionError::BadRequest));
    };
    if !got {
        return Err(NicClientError::Session(SessionError::BadRequest));
    }
    check_stream_reply(geometry, region_len, entries).map_err(NicClientError::Protocol)?;
    let region = arbor::packet_stream::SharedRegion::attach(dataspace, region_len as usize)?;
    Ok(arbor::packet_stream::Client::new(region, entries)?)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::test_support::Random;
    use crate::{decode, encode};

    #[test]
    fn default_args_fit_and_are_page_rounded() {
        let args = NicArgs::default();
        args.check().unwrap();
        let bytes = args.shared_bytes().unwrap();
        assert_eq!(bytes % 4096, 0);
        let transmit = args.transmit_geometry().unwrap();
        assert!(transmit.payload_len() >= 16 * RECEIVE_BUFFER_LEN);
        assert_eq!(transmit.entries(), 16);
    }

    #[test]
    fn bad_entry_counts_are_refused() {
        for entries in [0, 1, 2, 3, 5, 12, 512, u32::MAX] {
            let args = NicArgs {
                transmit_entries: entries,
                receive_entries: 16,
            };
            assert_eq!(args.check(), Err(NicError::BadEntries(entries)));
            assert_eq!(args.shared_bytes(), Err(NicError::BadEntries(entries)));
            assert!(args.transmit_geometry().is_err());
        }
    }

    #[test]
    fn frame_lengths_are_checked_both_ways() {
        assert!(check_transmit_frame(13).is_err());
        assert!(check_transmit_frame(14).is_ok());
        assert!(check_transmit_frame(1518).is_ok());
        assert!(check_transmit_frame(1519).is_err());
        let prefix = ReceivedFrame::encode(60, RECEIVE_BUFFER_LEN).unwrap();
        assert_eq!(
            ReceivedFrame::decode(prefix, RECEIVE_BUFFER_LEN),
            Ok(ReceivedFrame { length: 60 })
        );
        // A server claiming more than the buffer holds is caught.
        let prefix = 1518u16.to_le_bytes();
        assert_eq!(
            ReceivedFrame::decode(prefix, 100),
            Err(NicError::FrameLength(1518))
        );
        assert_eq!(
            ReceivedFrame::decode(prefix, 1),
            Err(NicError::BufferTooShort(1))
        );
        assert!(ReceivedFrame::encode(1518, 1519).is_err());
        assert!(ReceivedFrame::decode(u16::MAX.to_le_bytes(), usize::MAX).is_err());
    }

    #[test]
    fn info_is_checked() {
        let good = NicInfo {
            mac: MacAddress([2, 0, 0, 0, 0, 1]),
            link_up: true,
            max_frame_len: 1514,
        };
        good.check().unwrap();
        let group = NicInfo {
            mac: MacAddress([1, 0, 0x5e, 0, 0, 1]),
            ..good
        };
        assert!(matches!(group.check(), Err(NicError::BadMac(_))));
        let zero = NicInfo {
            mac: MacAddress([0; 6]),
            ..good
        };
        assert!(zero.check().is_err());
        let huge = NicInfo {
            max_frame_len: 9000,
            ..good
        };
        assert_eq!(huge.check(), Err(NicError::FrameLength(9000)));
        assert_eq!(std::format!("{}", good.mac), "02:00:00:00:00:01");
    }

    #[test]
    fn stream_replies_must_match_the_arguments() {
        let args = NicArgs::default();
        let geometry = args.receive_geometry().unwrap();
        let len = args.shared_bytes().unwrap() / 2;
        assert_eq!(check_stream_reply(&geometry, len, 16), Ok(()));
        assert_eq!(
            check_stream_reply(&geometry, len, 8),
            Err(NicError::StreamMismatch)
        );
        assert_eq!(
            check_stream_reply(&geometry, 4096, 16),
            Err(NicError::StreamMismatch)
        );
        assert_eq!(
            check_stream_reply(&geometry, u64::MAX, 16),
            Err(NicError::StreamMismatch)
        );
    }

    #[test]
    fn messages_round_trip() {
        let mut buffer = [0u8; 64];
        for request in [
            NicRequest::Info,
            NicRequest::Stream(StreamKind::Receive),
            NicRequest::SetNotification,
            NicRequest::ServerSignal,
        ] {
            let len = encode(&request, &mut buffer).unwrap();
            assert_eq!(decode::<NicRequest>(&buffer[..len]), Ok(request));
        }
        let reply = NicReply::Info(NicInfo {
            mac: MacAddress([2, 1, 2, 3, 4, 5]),
            link_up: false,
            max_frame_len: 1514,
        });
        let len = encode(&reply, &mut buffer).unwrap();
        assert_eq!(decode::<NicReply>(&buffer[..len]), Ok(reply));
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
            let _ = decode::<NicRequest>(&bytes);
            if let Ok(NicReply::Info(info)) = decode::<NicReply>(&bytes)
                && info.check().is_ok()
            {
                assert!(usize::from(info.max_frame_len) <= MAX_FRAME_LEN);
            }
            if let Ok(args) = decode::<NicArgs>(&bytes)
                && args.check().is_ok()
            {
                assert!(args.shared_bytes().is_ok());
            }
            let buffer_len = random.below(4000) as usize;
            let prefix = [random.byte(), random.byte()];
            if let Ok(frame) = ReceivedFrame::decode(prefix, buffer_len) {
                assert!(frame.length + LENGTH_PREFIX_LEN <= buffer_len);
                assert!(frame.length >= MIN_FRAME_LEN);
                frames_accepted += 1;
            }
            let args = NicArgs {
                transmit_entries: random.below(600) as u32,
                receive_entries: 1 << random.below(10),
            };
            if let Ok(geometry) = args.transmit_geometry() {
                let _ = check_stream_reply(&geometry, random.next(), random.next() as u32);
            }
        }
        // The fuzzer reached the accepting path too, not only refusals.
        assert!(frames_accepted > 0);
    }
}
