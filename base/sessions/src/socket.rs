//! The Socket session: TCP and UDP endpoints of the network stack, for
//! applications.
//!
//! A session is one application's set of sockets at the stack. Its data
//! moves through one shared **window** (a dataspace the stack makes from
//! the session's donated quota, fetched with [`SocketRequest::Window`]):
//! a send names a range of the window the client filled, a receive names a
//! range the stack fills, and the reply says how many bytes moved. Only
//! ranges and counts travel in IPC.
//!
//! Requests never block the stack: a receive with nothing waiting, an
//! accept with no connection, a send into a full buffer answer
//! [`SocketError::WouldBlock`], and the client waits for the notification it
//! handed over with [`SocketRequest::SetNotification`] (signalled whenever
//! any of its sockets may make progress), then tries again.
//!
//! The stack's per-label policy decides which ports a client may listen on
//! or bind ([`SocketError::PortNotAllowed`]) and how many sockets it may
//! hold ([`SocketError::TooManySockets`]); each socket's buffers are paid
//! from the session's quota ([`SocketError::Session`] with
//! `InsufficientQuota` when the donation does not cover one more).
//!
//! Nothing a client sends is trusted: [`check_window_range`] is the one
//! check of every range against the window, and handles are looked up, never
//! indexed.

use crate::SessionError;
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "Socket";
/// Bytes of a session's shared window when the client asks for none.
pub const DEFAULT_WINDOW_LEN: u32 = 64 * 1024;
/// Largest window a client may ask for.
pub const MAX_WINDOW_LEN: u32 = 1024 * 1024;
/// Most connections a listener may queue.
pub const MAX_BACKLOG: u16 = 64;

/// An IPv4 address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4(pub [u8; 4]);

impl core::fmt::Display for Ipv4 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// An IPv4 address and a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The address.
    pub address: Ipv4,
    /// The port.
    pub port: u16,
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.address, self.port)
    }
}

/// A socket's name within its session (chosen by the stack, never reused
/// within a session, so a stale handle finds nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SocketHandle(pub u32);

/// What a client asks for when it opens a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketArgs {
    /// Bytes of the shared window (a page multiple in `4096..=MAX_WINDOW_LEN`).
    pub window_len: u32,
}

impl Default for SocketArgs {
    fn default() -> Self {
        SocketArgs {
            window_len: DEFAULT_WINDOW_LEN,
        }
    }
}

impl SocketArgs {
    /// Refuses a window that is not a page multiple in `4096..=MAX_WINDOW_LEN`.
    pub fn check(&self) -> Result<(), SocketError> {
        let len = self.window_len;
        if !(4096..=MAX_WINDOW_LEN).contains(&len) || !len.is_multiple_of(4096) {
            return Err(SocketError::BadWindow { len });
        }
        Ok(())
    }
}

/// A range of the shared window, as a request names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRange {
    /// First byte, from the window's start.
    pub offset: u32,
    /// Bytes.
    pub length: u32,
}

/// Checks `range` against a window of `window_len` bytes; the byte range
/// to use when it lies wholly inside.
pub fn check_window_range(
    range: WindowRange,
    window_len: usize,
) -> Result<core::ops::Range<usize>, SocketError> {
    let start = range.offset as usize;
    let end = start
        .checked_add(range.length as usize)
        .ok_or(SocketError::BadRange(range))?;
    if end > window_len {
        return Err(SocketError::BadRange(range));
    }
    Ok(start..end)
}

/// A Socket session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketRequest {
    /// The reply carries the shared window's dataspace.
    Window,
    /// The notification riding with this message is signalled whenever one
    /// of the session's sockets may make progress.
    SetNotification,
    /// A TCP listener on `port` of every local address.
    Listen {
        /// The port (policy decides whether this client may have it).
        port: u16,
        /// Connections to queue (at most [`MAX_BACKLOG`]).
        backlog: u16,
    },
    /// The next connection a listener queued, as a socket of its own.
    Accept {
        /// The listener.
        listener: SocketHandle,
    },
    /// A TCP connection to `remote` (the reply comes at once; the socket
    /// is connected when [`SocketRequest::State`] says so).
    Connect {
        /// Where to.
        remote: Endpoint,
    },
    /// Queue bytes of the window for sending on a TCP socket.
    Send {
        /// The socket.
        socket: SocketHandle,
        /// What to send.
        data: WindowRange,
    },
    /// Move received bytes into the window.
    Recv {
        /// The socket.
        socket: SocketHandle,
        /// Where they may go (its length is the most to move).
        buffer: WindowRange,
    },
    /// Close a socket of either kind (TCP sends FIN; the handle is gone).
    Close {
        /// The socket.
        socket: SocketHandle,
    },
    /// A UDP socket on `port` (0 picks a free one).
    Bind {
        /// The port.
        port: u16,
    },
    /// Send one datagram from the window.
    SendTo {
        /// The UDP socket.
        socket: SocketHandle,
        /// Where to.
        remote: Endpoint,
        /// The datagram.
        data: WindowRange,
    },
    /// Move one received datagram into the window.
    RecvFrom {
        /// The UDP socket.
        socket: SocketHandle,
        /// Where it may go.
        buffer: WindowRange,
    },
    /// The state of a socket.
    State {
        /// The socket.
        socket: SocketHandle,
    },
}

/// What a TCP socket is doing, as the client needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketState {
    /// A listener.
    Listening,
    /// A connection is being set up.
    Connecting,
    /// Data flows both ways.
    Established,
    /// The peer closed its side; what it sent can still be read.
    PeerClosed,
    /// Gone (reset, timed out or closed); only `Close` is left to do.
    Closed,
    /// A UDP socket.
    Datagram,
}

/// A Socket session's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketReply {
    /// For [`SocketRequest::Window`]: the message carries a dataspace of this many bytes.
    Window {
        /// Bytes.
        len: u32,
    },
    /// A new socket (Listen, Connect, Bind).
    Socket(SocketHandle),
    /// For Accept: the connection and who is on the other end.
    Accepted {
        /// The new socket.
        socket: SocketHandle,
        /// The peer.
        remote: Endpoint,
    },
    /// For Send and SendTo: bytes taken (a send may take fewer than offered).
    Sent {
        /// Bytes.
        length: u32,
    },
    /// For Recv: bytes written at the start of the range; 0 means the
    /// peer closed and everything was read.
    Received {
        /// Bytes.
        length: u32,
    },
    /// For RecvFrom: one datagram and its sender.
    ReceivedFrom {
        /// Bytes.
        length: u32,
        /// The sender.
        remote: Endpoint,
    },
    /// For State.
    State(SocketState),
    /// Done.
    Done,
    /// Refused.
    Error(SocketError),
}

/// Why a socket request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketError {
    /// A session-level refusal (quota, bad request, no such session).
    Session(SessionError),
    /// Policy does not let this client listen on or bind this port.
    PortNotAllowed {
        /// The port.
        port: u16,
    },
    /// The client holds as many sockets as policy allows.
    TooManySockets {
        /// The limit.
        limit: u32,
    },
    /// Another socket has the port.
    PortInUse {
        /// The port.
        port: u16,
    },
    /// No socket of this session has the handle.
    NoSuchSocket(SocketHandle),
    /// The socket is of the other kind (TCP request on UDP, or a listener).
    WrongKind(SocketHandle),
    /// Nothing to do now; wait for the notification and try again.
    WouldBlock,
    /// The connection is gone (reset, refused, timed out).
    NotConnected,
    /// A range reaching outside the window.
    BadRange(WindowRange),
    /// The window asked for is not a page multiple in `4096..=MAX_WINDOW_LEN`.
    BadWindow {
        /// Bytes asked for.
        len: u32,
    },
    /// A backlog of 0 or above [`MAX_BACKLOG`], or port 0 for a listener.
    BadArgument,
    /// The stack has no address yet (DHCP still running).
    NoAddress,
    /// A datagram to send longer than [`MAX_DATAGRAM_LEN`], or a waiting
    /// datagram longer than the buffer offered for it (it stays queued).
    DatagramLength {
        /// Bytes.
        length: u32,
    },
}

impl From<SessionError> for SocketError {
    fn from(error: SessionError) -> Self {
        SocketError::Session(error)
    }
}

impl core::fmt::Display for SocketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Session(error) => write!(f, "{error}"),
            Self::PortNotAllowed { port } => write!(f, "policy does not allow port {port}"),
            Self::TooManySockets { limit } => write!(f, "socket limit of {limit} reached"),
            Self::PortInUse { port } => write!(f, "port {port} is in use"),
            Self::NoSuchSocket(handle) => write!(f, "no socket {}", handle.0),
            Self::WrongKind(handle) => write!(f, "socket {} is of the wrong kind", handle.0),
            Self::WouldBlock => write!(f, "would block"),
            Self::NotConnected => write!(f, "not connected"),
            Self::BadRange(range) => write!(
                f,
                "range {}+{} outside the window",
                range.offset, range.length
            ),
            Self::BadWindow { len } => write!(f, "window of {len} bytes"),
            Self::BadArgument => write!(f, "bad argument"),
            Self::NoAddress => write!(f, "no address yet"),
            Self::DatagramLength { length } => write!(
                f,
                "datagram of {length} bytes (at most {MAX_DATAGRAM_LEN}, and no more than the buffer)"
            ),
        }
    }
}

/// Checks the arguments of a listen request that need no policy.
pub fn check_listen(port: u16, backlog: u16) -> Result<(), SocketError> {
    if port == 0 || backlog == 0 || backlog > MAX_BACKLOG {
        return Err(SocketError::BadArgument);
    }
    Ok(())
}

/// Longest UDP payload: one unfragmented IPv4 packet on Ethernet
/// (1500 - 20 - 8 bytes); the stack does not fragment.
pub const MAX_DATAGRAM_LEN: usize = 1472;
/// First port of the ephemeral range: connections' local ports and UDP
/// sockets bound to port 0 come from here, and binding a port in it needs
/// no policy entry (as a connect needs none for its local port).
pub const EPHEMERAL_FIRST: u16 = 49152;

/// Checks the length of a datagram to send.
pub fn check_datagram(length: usize) -> Result<(), SocketError> {
    if length <= MAX_DATAGRAM_LEN {
        Ok(())
    } else {
        Err(SocketError::DatagramLength {
            length: u32::try_from(length).unwrap_or(u32::MAX),
        })
    }
}

/// RAM a client donates for a session: the window, the server's
/// bookkeeping, and `sockets` sockets' buffers at [`SOCKET_COST`] each.
pub fn session_ram(args: &SocketArgs, sockets: u32) -> u64 {
    u64::from(args.window_len) + SESSION_OVERHEAD + u64::from(sockets) * SOCKET_COST
}

/// The stack's bookkeeping per session, beyond the window and the sockets.
pub const SESSION_OVERHEAD: u64 = 16 * 1024;
/// RAM one socket costs at the stack (its receive and send buffers and
/// smoltcp's state for it).
pub const SOCKET_COST: u64 = 2 * TCP_BUFFER_LEN as u64 + 2048;
/// Bytes of each of a TCP socket's two buffers at the stack.
pub const TCP_BUFFER_LEN: usize = 8 * 1024;
/// Capabilities a client donates: the parents' share, the window and the
/// client's notification.
pub const SESSION_CAPS: u64 = 6;
/// Capabilities the stack requires of what reaches it.
pub const SERVER_CAPS: u64 = 3;

/// The client's end of a Socket session: requests as calls, data through
/// the mapped window, waits on its own notification.
pub struct SocketClient {
    /// The session.
    pub session: crate::client::Session,
    window: arbor::packet_stream::SharedRegion,
    notification: arbor::abi::CapSlot,
}

impl SocketClient {
    /// Opens a session labelled `label` with room for `sockets` sockets.
    pub fn open(label: &str, sockets: u32) -> Result<SocketClient, SocketError> {
        use crate::Interface;
        use crate::client::{call, open_session_with_caps};
        let args = SocketArgs::default();
        let ram = session_ram(&args, sockets);
        let session = open_session_with_caps(SERVICE, label, &args, ram, SESSION_CAPS, None)?;
        let notification = arbor::slots::allocate().map_err(SessionError::from)?;
        arbor::sys::create(
            arbor::abi::ObjectKind::Notification,
            arbor::abi::slot::OWN_PD,
            notification,
            0,
        )
        .map_err(SessionError::from)?;
        let (reply, _) = call::<_, SocketReply>(
            session.cap,
            Interface::Session,
            &SocketRequest::SetNotification,
            Some(notification),
            None,
        )?;
        expect(reply, |reply| {
            matches!(reply, SocketReply::Done).then_some(())
        })?;
        let dataspace = arbor::slots::allocate().map_err(SessionError::from)?;
        let (reply, got) = call::<_, SocketReply>(
            session.cap,
            Interface::Session,
            &SocketRequest::Window,
            None,
            Some(dataspace),
        )?;
        let len = expect(reply, |reply| match reply {
            SocketReply::Window { len } => Some(len),
            _ => None,
        })?;
        if !got || len != args.window_len {
            return Err(SocketError::Session(SessionError::BadRequest));
        }
        let window = arbor::packet_stream::SharedRegion::attach(dataspace, len as usize)
            .map_err(|_| SocketError::Session(SessionError::BadRequest))?;
        Ok(SocketClient {
            session,
            window,
            notification,
        })
    }

    /// One request, answered.
    pub fn request(&self, request: SocketRequest) -> Result<SocketReply, SocketError> {
        let (reply, _) = crate::client::call::<_, SocketReply>(
            self.session.cap,
            crate::Interface::Session,
            &request,
            None,
            None,
        )?;
        match reply {
            SocketReply::Error(error) => Err(error),
            reply => Ok(reply),
        }
    }

    /// Waits until the stack signals progress, or `ms` pass.
    pub fn wait(&self, ms: u64) {
        let _ = arbor::sys::wait_timeout(self.notification, ms);
    }

    /// A TCP listener.
    pub fn listen(&self, port: u16, backlog: u16) -> Result<SocketHandle, SocketError> {
        expect(
            self.request(SocketRequest::Listen { port, backlog })?,
            socket_of,
        )
    }

    /// A TCP connection (connecting; see [`SocketClient::state`]).
    pub fn connect(&self, remote: Endpoint) -> Result<SocketHandle, SocketError> {
        expect(self.request(SocketRequest::Connect { remote })?, socket_of)
    }

    /// A TCP connection that is established: connects and waits for it
    /// (up to 10 s), and tries again 20 times when the peer refuses or does
    /// not answer (a server may not listen yet); `NotConnected` when every
    /// attempt failed.
    pub fn connect_established(&self, remote: Endpoint) -> Result<SocketHandle, SocketError> {
        for _ in 0..20 {
            let socket = self.connect(remote)?;
            for _ in 0..200 {
                match self.state(socket)? {
                    SocketState::Established => return Ok(socket),
                    SocketState::Connecting => self.wait(50),
                    _ => break,
                }
            }
            let _ = self.close(socket);
            for _ in 0..4 {
                self.wait(50);
            }
        }
        Err(SocketError::NotConnected)
    }

    /// The next accepted connection, or `WouldBlock`.
    pub fn accept(&self, listener: SocketHandle) -> Result<(SocketHandle, Endpoint), SocketError> {
        expect(
            self.request(SocketRequest::Accept { listener })?,
            |reply| match reply {
                SocketReply::Accepted { socket, remote } => Some((socket, remote)),
                _ => None,
            },
        )
    }

    /// Sends what fits of `bytes` (at most the window); bytes taken, or `WouldBlock`.
    pub fn send(&self, socket: SocketHandle, bytes: &[u8]) -> Result<usize, SocketError> {
        let length = bytes.len().min(self.window.len());
        self.window
            .write_at(0, &bytes[..length])
            .map_err(|_| SocketError::BadArgument)?;
        let data = WindowRange {
            offset: 0,
            length: length as u32,
        };
        expect(
            self.request(SocketRequest::Send { socket, data })?,
            |reply| match reply {
                SocketReply::Sent { length } => Some(length as usize),
                _ => None,
            },
        )
    }

    /// Receives into `out`; bytes received (0: the peer closed), or `WouldBlock`.
    pub fn recv(&self, socket: SocketHandle, out: &mut [u8]) -> Result<usize, SocketError> {
        let capacity = out.len().min(self.window.len());
        let buffer = WindowRange {
            offset: 0,
            length: capacity as u32,
        };
        let length = expect(
            self.request(SocketRequest::Recv { socket, buffer })?,
            |reply| match reply {
                SocketReply::Received { length } => Some(length as usize),
                _ => None,
            },
        )?;
        // The stack's count is a claim: never beyond what was offered.
        let length = length.min(capacity);
        self.window
            .read_at(0, &mut out[..length])
            .map_err(|_| SocketError::BadArgument)?;
        Ok(length)
    }

    /// A UDP socket on `port` (0: a free ephemeral one).
    pub fn bind(&self, port: u16) -> Result<SocketHandle, SocketError> {
        expect(self.request(SocketRequest::Bind { port })?, socket_of)
    }

    /// Sends one datagram of `bytes` (at most [`MAX_DATAGRAM_LEN`]) to
    /// `remote`, or `WouldBlock` while the socket's send buffer is full.
    pub fn send_to(
        &self,
        socket: SocketHandle,
        remote: Endpoint,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        check_datagram(bytes.len())?;
        if bytes.len() > self.window.len() {
            return Err(SocketError::BadArgument);
        }
        self.window
            .write_at(0, bytes)
            .map_err(|_| SocketError::BadArgument)?;
        let data = WindowRange {
            offset: 0,
            length: bytes.len() as u32,
        };
        expect(
            self.request(SocketRequest::SendTo {
                socket,
                remote,
                data,
            })?,
            |reply| matches!(reply, SocketReply::Sent { .. }).then_some(()),
        )
    }

    /// The next datagram, copied into `out`, and its sender; `WouldBlock`
    /// when none waits.
    pub fn recv_from(
        &self,
        socket: SocketHandle,
        out: &mut [u8],
    ) -> Result<(usize, Endpoint), SocketError> {
        let capacity = out.len().min(self.window.len());
        let buffer = WindowRange {
            offset: 0,
            length: capacity as u32,
        };
        let (length, remote) = expect(
            self.request(SocketRequest::RecvFrom { socket, buffer })?,
            |reply| match reply {
                SocketReply::ReceivedFrom { length, remote } => Some((length as usize, remote)),
                _ => None,
            },
        )?;
        // The stack's count is a claim: never beyond what was offered.
        let length = length.min(capacity);
        self.window
            .read_at(0, &mut out[..length])
            .map_err(|_| SocketError::BadArgument)?;
        Ok((length, remote))
    }

    /// The socket's state.
    pub fn state(&self, socket: SocketHandle) -> Result<SocketState, SocketError> {
        expect(
            self.request(SocketRequest::State { socket })?,
            |reply| match reply {
                SocketReply::State(state) => Some(state),
                _ => None,
            },
        )
    }

    /// Closes a socket.
    pub fn close(&self, socket: SocketHandle) -> Result<(), SocketError> {
        expect(self.request(SocketRequest::Close { socket })?, |reply| {
            matches!(reply, SocketReply::Done).then_some(())
        })
    }
}

fn socket_of(reply: SocketReply) -> Option<SocketHandle> {
    match reply {
        SocketReply::Socket(handle) => Some(handle),
        _ => None,
    }
}

fn expect<T>(
    reply: SocketReply,
    pick: impl FnOnce(SocketReply) -> Option<T>,
) -> Result<T, SocketError> {
    match reply {
        SocketReply::Error(error) => Err(error),
        reply => pick(reply).ok_or(SocketError::Session(SessionError::BadRequest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Random;
    use crate::{decode, encode};

    #[test]
    fn window_ranges_are_checked() {
        let range = |offset, length| WindowRange { offset, length };
        assert_eq!(check_window_range(range(0, 4096), 4096), Ok(0..4096));
        assert_eq!(check_window_range(range(4000, 96), 4096), Ok(4000..4096));
        assert_eq!(check_window_range(range(4096, 0), 4096), Ok(4096..4096));
        for bad in [
            range(4000, 97),
            range(4097, 0),
            range(u32::MAX, u32::MAX),
            range(1, u32::MAX),
        ] {
            assert_eq!(
                check_window_range(bad, 4096),
                Err(SocketError::BadRange(bad))
            );
        }
    }

    #[test]
    fn session_arguments_are_checked() {
        assert_eq!(SocketArgs::default().check(), Ok(()));
        for len in [0, 100, 4095, 4097, MAX_WINDOW_LEN + 4096, u32::MAX] {
            assert_eq!(
                SocketArgs { window_len: len }.check(),
                Err(SocketError::BadWindow { len })
            );
        }
        assert_eq!(check_listen(80, 4), Ok(()));
        assert_eq!(check_listen(0, 4), Err(SocketError::BadArgument));
        assert_eq!(check_listen(80, 0), Err(SocketError::BadArgument));
        assert_eq!(check_listen(80, 65), Err(SocketError::BadArgument));
    }

    #[test]
    fn datagram_lengths_are_checked() {
        assert_eq!(check_datagram(0), Ok(()));
        assert_eq!(check_datagram(MAX_DATAGRAM_LEN), Ok(()));
        assert_eq!(
            check_datagram(MAX_DATAGRAM_LEN + 1),
            Err(SocketError::DatagramLength { length: 1473 })
        );
        assert_eq!(
            check_datagram(usize::MAX),
            Err(SocketError::DatagramLength { length: u32::MAX })
        );
        let reply = SocketReply::Error(SocketError::DatagramLength { length: 9000 });
        let mut buffer = [0u8; 32];
        let len = encode(&reply, &mut buffer).unwrap();
        assert_eq!(decode::<SocketReply>(&buffer[..len]), Ok(reply));
    }

    #[test]
    fn messages_round_trip() {
        let mut buffer = [0u8; 64];
        let socket = SocketHandle(7);
        let data = WindowRange {
            offset: 128,
            length: 1000,
        };
        let remote = Endpoint {
            address: Ipv4([10, 0, 0, 2]),
            port: 8080,
        };
        for request in [
            SocketRequest::Window,
            SocketRequest::SetNotification,
            SocketRequest::Listen {
                port: 80,
                backlog: 8,
            },
            SocketRequest::Accept { listener: socket },
            SocketRequest::Connect { remote },
            SocketRequest::Send { socket, data },
            SocketRequest::Recv {
                socket,
                buffer: data,
            },
            SocketRequest::Close { socket },
            SocketRequest::Bind { port: 7 },
            SocketRequest::SendTo {
                socket,
                remote,
                data,
            },
            SocketRequest::RecvFrom {
                socket,
                buffer: data,
            },
            SocketRequest::State { socket },
        ] {
            let len = encode(&request, &mut buffer).unwrap();
            assert_eq!(decode::<SocketRequest>(&buffer[..len]), Ok(request));
        }
        for reply in [
            SocketReply::Accepted { socket, remote },
            SocketReply::Error(SocketError::PortNotAllowed { port: 80 }),
            SocketReply::Error(SocketError::Session(SessionError::InsufficientQuota {
                needed: 4096,
            })),
            SocketReply::State(SocketState::PeerClosed),
        ] {
            let len = encode(&reply, &mut buffer).unwrap();
            assert_eq!(decode::<SocketReply>(&buffer[..len]), Ok(reply));
        }
        assert_eq!(alloc::format!("{remote}"), "10.0.0.2:8080");
    }

    /// Thousands of arbitrary messages through the decoders and the range
    /// check: values or errors, never a panic, and every accepted range lies
    /// inside the window.
    #[test]
    fn fuzz_decoders_never_panic() {
        let mut random = Random::new(0x736f_636b_6574);
        let mut decoded = 0;
        let mut ranges_accepted = 0;
        for _ in 0..20_000 {
            let bytes = random.bytes(32);
            if let Ok(request) = decode::<SocketRequest>(&bytes) {
                decoded += 1;
                let window_len = random.below(u64::from(MAX_WINDOW_LEN) + 1) as usize;
                let range = match request {
                    SocketRequest::Send { data, .. } | SocketRequest::SendTo { data, .. } => {
                        Some(data)
                    }
                    SocketRequest::Recv { buffer, .. } | SocketRequest::RecvFrom { buffer, .. } => {
                        Some(buffer)
                    }
                    SocketRequest::Listen { port, backlog } => {
                        let _ = check_listen(port, backlog);
                        None
                    }
                    _ => None,
                };
                if let Some(range) = range
                    && let Ok(checked) = check_window_range(range, window_len)
                {
                    assert!(checked.start <= checked.end && checked.end <= window_len);
                    ranges_accepted += 1;
                }
            }
            let _ = decode::<SocketReply>(&bytes);
            if let Ok(args) = decode::<SocketArgs>(&bytes)
                && args.check().is_ok()
            {
                assert!(args.window_len <= MAX_WINDOW_LEN);
            }
            let range = WindowRange {
                offset: random.next() as u32,
                length: random.next() as u32 >> random.below(32),
            };
            let window_len = random.below(1 << 21) as usize;
            if let Ok(checked) = check_window_range(range, window_len) {
                assert!(checked.end <= window_len);
                ranges_accepted += 1;
            }
        }
        // The fuzzer reached the accepting paths too, not only refusals.
        assert!(decoded > 100);
        assert!(ranges_accepted > 0);
    }
}
