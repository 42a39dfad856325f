//! net: the TCP/IP stack component. It drives smoltcp over the Uplink
//! session its NIC driver opens here (`arbor_sessions::uplink`: the stack
//! is the server, so the frames' shared memory is the stack's): DHCP (with
//! a static fallback from its config) or a static address, ARP, IPv4 and
//! ICMP echo (smoltcp answers pings itself), and, with `ping` in its
//! config, pings an address once and logs the reply.
//!
//! Everything arrives on the server framework's notification: the driver's
//! signal (frames or buffers wait) and a 10 ms periodic Timer signal that
//! drives smoltcp's timers. One driver session at a time: when the driver
//! dies, init closes its session here, the link goes down and every socket
//! stays; the restarted driver opens a new session (link up, the new MAC
//! taken) and TCP retransmits what was lost.
//!
//! It serves Socket sessions (`arbor_sessions::socket`): TCP listen,
//! accept, connect, send, recv and close, data through each session's
//! window, under the per-label policy of its config (ports and socket
//! count, [`net::policy`]), each socket paid from the session's quota
//! ([`net::sockets`]). A listener holds one pending connection at a time
//! (smoltcp has no accept queue): a backlog above 1 is accepted but not
//! queued. UDP: bind (a policy port, or 0 for an ephemeral one),
//! send_to and recv_from, one datagram per request through the window,
//! each at most `socket::MAX_DATAGRAM_LEN` bytes.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod device;

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use arbor::abi::{CapSlot, info, slot};
use arbor::packet_stream::SharedRegion;
use arbor::{slots, sys};
use arbor_sessions::bulk;
use arbor_sessions::client::{self, Session, TIMER_SESSION_RAM, call, open_session};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{TimerReply, TimerRequest, name};
use arbor_sessions::socket::{
    self, Endpoint, Ipv4, SocketArgs, SocketError, SocketHandle as SocketId, SocketReply,
    SocketRequest, SocketState, WindowRange,
};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::uplink::{self, UplinkPort};
use arbor_sessions::{Interface as Ipc, SessionError, decode, env, log};
use device::UplinkDevice;
use net::config::{AddressConfig, Config, StaticAddress};
use net::policy::policy_for;
use net::sockets::{ClientSockets, Kind};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{AnySocket, dhcpv4, icmp, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, IpEndpoint,
    Ipv4Address,
};

arbor::entry!(run);

/// Server notification bit the driver signals.
const UPLINK_BIT: u64 = 1;
/// The interface's address until a driver names its own.
const NO_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0];
/// Server notification bit the Timer signals every [`TICK_MS`].
const TIMER_BIT: u64 = 2;
const TICK_MS: u64 = 10;
const PING_IDENT: u16 = 0x4172;

fn run(_argument: u64) {
    let config: Config = match env::config::<Config>() {
        Ok(config) => match config.check() {
            Ok(()) => config,
            Err(error) => return fail("config", SessionError::BadRequest, Some(error)),
        },
        Err(error) => {
            log!("config: {error}");
            return client::exit(1);
        }
    };
    if let Err((what, error)) = start(config) {
        fail::<net::config::ConfigError>(what, error, None);
    }
}

fn fail<E: core::fmt::Display>(what: &str, error: SessionError, detail: Option<E>) {
    match detail {
        Some(detail) => log!("{what}: {detail}"),
        None => log!("{what}: {error}"),
    }
    client::exit(1);
}

fn start(config: Config) -> Result<(), (&'static str, SessionError)> {
    let server = Server::new().map_err(|e| ("server", e))?;
    let uplink_kick = server.signal_cap(UPLINK_BIT).map_err(|e| ("signal", e))?;
    let timer_signal = server.signal_cap(TIMER_BIT).map_err(|e| ("signal", e))?;
    let timer = open_session(name::TIMER, "", &(), TIMER_SESSION_RAM, None)
        .map_err(|e| ("Timer session", e))?;
    timer_request(&timer, TimerRequest::SetNotification, Some(timer_signal))
        .map_err(|e| ("Timer notification", e))?;
    timer_request(&timer, TimerRequest::Periodic { ms: TICK_MS }, None)
        .map_err(|e| ("Timer period", e))?;
    let mut device = UplinkDevice::default();
    let now = now(&timer);
    let mut iface = Interface::new(
        IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(NO_MAC))),
        &mut device,
        now,
    );
    let mut sockets = SocketSet::new(vec![]);
    let dhcp = match config.address {
        AddressConfig::Static(address) => {
            configure(&mut iface, address);
            None
        }
        AddressConfig::Dhcp { .. } => Some(sockets.add(dhcpv4::Socket::new())),
    };
    log!(
        "{}; waiting for a driver's Uplink session",
        if dhcp.is_some() {
            "asking DHCP"
        } else {
            "static address"
        }
    );
    let stack = Stack {
        config,
        timer,
        uplink_kick,
        device,
        iface,
        sockets,
        dhcp,
        started: now,
        ping: None,
        ping_done: false,
        ports: BTreeSet::new(),
        udp_ports: BTreeSet::new(),
        closing: Vec::new(),
        next_port: 49152,
    };
    // A stack whose policy names no client serves nobody: it announces
    // nothing (and keeps answering pings).
    let services: &[&str] = if stack.config.policy.is_empty() {
        &[uplink::SERVICE]
    } else {
        &[uplink::SERVICE, socket::SERVICE]
    };
    let error = server.serve(services, stack);
    Err(("serving", error))
}

fn timer_request(
    timer: &Session,
    request: TimerRequest,
    cap: Option<CapSlot>,
) -> Result<TimerReply, SessionError> {
    match call::<_, TimerReply>(timer.cap, Ipc::Session, &request, cap, None)? {
        (TimerReply::Error(error), _) => Err(error),
        (reply, _) => Ok(reply),
    }
}

fn now(timer: &Session) -> Instant {
    match timer_request(timer, TimerRequest::Elapsed, None) {
        Ok(TimerReply::Elapsed { ms }) => Instant::from_millis(ms as i64),
        _ => Instant::from_millis(0),
    }
}

fn ipv4((a, b, c, d): (u8, u8, u8, u8)) -> Ipv4Address {
    Ipv4Address::new(a, b, c, d)
}

fn configure(iface: &mut Interface, address: StaticAddress) {
    iface.update_ip_addrs(|addresses| {
        addresses.clear();
        let _ = addresses.push(IpCidr::new(
            IpAddress::Ipv4(ipv4(address.address)),
            address.prefix,
        ));
    });
    if let Some(gateway) = address.gateway {
        let _ = iface.routes_mut().add_default_ipv4_route(ipv4(gateway));
    }
    let (a, b, c, d) = address.address;
    log!("address {a}.{b}.{c}.{d}/{}", address.prefix);
}

/// The stack: smoltcp's interface and sockets over the driver's Uplink session.
struct Stack {
    config: Config,
    timer: Session,
    /// The capability a driver gets to signal the stack.
    uplink_kick: CapSlot,
    device: UplinkDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    started: Instant,
    /// The ICMP socket and when the echo request left.
    ping: Option<(SocketHandle, Option<Instant>)>,
    ping_done: bool,
    /// Ports with a listener, over all sessions.
    ports: BTreeSet<u16>,
    /// Ports with a UDP socket, over all sessions.
    udp_ports: BTreeSet<u16>,
    /// Closed sockets still sending their FIN.
    closing: Vec<SocketHandle>,
    /// The last ephemeral port handed out.
    next_port: u16,
}

impl Stack {
    fn has_address(&self) -> bool {
        !self.iface.ip_addrs().is_empty()
    }

    fn poll(&mut self) {
        let now = now(&self.timer);
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.address(now);
        self.ping(now);
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.device.flush();
    }

    /// DHCP's answer, or the fallback once the timeout passed.
    fn address(&mut self, now: Instant) {
        let Some(handle) = self.dhcp else { return };
        let had_address = self.has_address();
        let event = self.sockets.get_mut::<dhcpv4::Socket>(handle).poll();
        match event {
            Some(dhcpv4::Event::Configured(lease)) => {
                let address = lease.address.address().octets();
                configure(
                    &mut self.iface,
                    StaticAddress {
                        address: (address[0], address[1], address[2], address[3]),
                        prefix: lease.address.prefix_len(),
                        gateway: lease.router.map(|r| {
                            let o = r.octets();
                            (o[0], o[1], o[2], o[3])
                        }),
                    },
                );
                log!("DHCP lease");
            }
            // The socket reports Deconfigured once at start, too.
            Some(dhcpv4::Event::Deconfigured) if had_address => {
                self.iface.update_ip_addrs(|addresses| addresses.clear());
                log!("DHCP lease lost");
            }
            Some(dhcpv4::Event::Deconfigured) => {}
            None => {
                let AddressConfig::Dhcp {
                    fallback: Some(fallback),
                    timeout_ms,
                } = self.config.address
                else {
                    return;
                };
                if !self.has_address() && (now - self.started).total_millis() >= timeout_ms {
                    log!("no DHCP answer in {timeout_ms} ms; using the fallback");
                    self.sockets.remove(handle);
                    self.dhcp = None;
                    configure(&mut self.iface, fallback);
                }
            }
        }
    }

    /// The configured self-test ping: one echo request (repeated each
    /// second until answered, since the first may wait on ARP).
    fn ping(&mut self, now: Instant) {
        let Some(target) = self.config.ping else {
            return;
        };
        if self.ping_done || !self.has_address() {
            return;
        }
        let (handle, sent) = match self.ping {
            Some(ping) => ping,
            None => {
                let buffer =
                    || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 512]);
                let mut socket = icmp::Socket::new(buffer(), buffer());
                let _ = socket.bind(icmp::Endpoint::Ident(PING_IDENT));
                let handle = self.sockets.add(socket);
                self.ping = Some((handle, None));
                (handle, None)
            }
        };
        let target = IpAddress::Ipv4(ipv4(target));
        let capabilities = self.device.checksums();
        let socket = self.sockets.get_mut::<icmp::Socket>(handle);
        while let Ok((payload, from)) = socket.recv() {
            let Ok(packet) = Icmpv4Packet::new_checked(payload) else {
                continue;
            };
            if let Ok(Icmpv4Repr::EchoReply {
                ident: PING_IDENT, ..
            }) = Icmpv4Repr::parse(&packet, &capabilities)
                && let Some(sent) = sent
            {
                log!(
                    "ping reply from {from} in {} ms",
                    (now - sent).total_millis()
                );
                self.ping_done = true;
                return;
            }
        }
        let due = sent.is_none_or(|sent| (now - sent).total_millis() >= 1000);
        if due && socket.can_send() {
            let request = Icmpv4Repr::EchoRequest {
                ident: PING_IDENT,
                seq_no: 1,
                data: b"arbor ping",
            };
            if let Ok(buffer) = socket.send(request.buffer_len(), target) {
                request.emit(&mut Icmpv4Packet::new_unchecked(buffer), &capabilities);
                self.ping = Some((handle, Some(now)));
            }
        }
    }
}

/// A session at the stack: an application's sockets, or the NIC driver's
/// uplink (whose port lives in the stack's device, where smoltcp reaches it).
enum Client {
    Sockets(SocketSession),
    Uplink,
}

/// One application's session: its sockets, window and notification.
struct SocketSession {
    sockets: ClientSockets<SocketHandle>,
    window_cap: CapSlot,
    window: SharedRegion,
    notification: Option<CapSlot>,
}

fn budget_of(quota: Quota, args: &SocketArgs) -> u64 {
    quota
        .ram
        .saturating_sub(u64::from(args.window_len) + socket::SESSION_OVERHEAD)
}

fn new_tcp() -> tcp::Socket<'static> {
    let buffer = || tcp::SocketBuffer::new(vec![0; socket::TCP_BUFFER_LEN]);
    let mut tcp = tcp::Socket::new(buffer(), buffer());
    tcp.set_ack_delay(None);
    tcp.set_nagle_enabled(false);
    tcp
}

fn endpoint_of(endpoint: Option<IpEndpoint>) -> Endpoint {
    match endpoint {
        Some(IpEndpoint {
            addr: IpAddress::Ipv4(address),
            port,
        }) => Endpoint {
            address: Ipv4(address.octets()),
            port,
        },
        _ => Endpoint::default(),
    }
}

impl Stack {
    /// Adds `stack_socket` to the stack and records it in the client's
    /// session as `kind`, paid from its quota; a session that refuses it
    /// (its limit or quota) leaves the stack as it was.
    fn adopt(
        &mut self,
        session: &mut SocketSession,
        kind: Kind,
        stack_socket: impl AnySocket<'static>,
    ) -> Result<socket::SocketHandle, SocketError> {
        let handle = self.sockets.add(stack_socket);
        session
            .sockets
            .insert(kind, handle, socket::SOCKET_COST)
            .inspect_err(|_| {
                self.sockets.remove(handle);
            })
    }

    fn listen(&mut self, session: &mut SocketSession, port: u16, backlog: u16) -> SocketReply {
        if let Err(error) = socket::check_listen(port, backlog) {
            return SocketReply::Error(error);
        }
        let kind = Kind::Listener { port };
        if let Err(error) = session.sockets.admit(kind, socket::SOCKET_COST) {
            log!("listen on port {port} refused: {error}");
            return SocketReply::Error(error);
        }
        if self.ports.contains(&port) {
            return SocketReply::Error(SocketError::PortInUse { port });
        }
        let mut tcp = new_tcp();
        if tcp.listen(port).is_err() {
            return SocketReply::Error(SocketError::BadArgument);
        }
        match self.adopt(session, kind, tcp) {
            Ok(socket) => {
                self.ports.insert(port);
                log!("listening on port {port}");
                SocketReply::Socket(socket)
            }
            Err(error) => SocketReply::Error(error),
        }
    }

    fn accept(&mut self, session: &mut SocketSession, listener: SocketId) -> SocketReply {
        let entry = match session.sockets.get(listener) {
            Ok(entry) => entry,
            Err(error) => return SocketReply::Error(error),
        };
        let Kind::Listener { port } = entry.kind else {
            return SocketReply::Error(SocketError::WrongKind(listener));
        };
        let tcp = self.sockets.get_mut::<tcp::Socket>(entry.stack);
        if !matches!(tcp.state(), tcp::State::Established | tcp::State::CloseWait) {
            return SocketReply::Error(SocketError::WouldBlock);
        }
        let remote = endpoint_of(tcp.remote_endpoint());
        let connection = entry.stack;
        // The connection keeps the listener's smoltcp socket; the listener
        // gets a fresh one on the same port.
        let accepted = match session
            .sockets
            .insert(Kind::Stream, connection, socket::SOCKET_COST)
        {
            Ok(accepted) => accepted,
            Err(error) => return SocketReply::Error(error),
        };
        let mut fresh = new_tcp();
        let _ = fresh.listen(port);
        let fresh = self.sockets.add(fresh);
        let _ = session.sockets.set_stack(listener, fresh);
        SocketReply::Accepted {
            socket: accepted,
            remote,
        }
    }

    fn connect(&mut self, session: &mut SocketSession, remote: Endpoint) -> SocketReply {
        if !self.has_address() {
            return SocketReply::Error(SocketError::NoAddress);
        }
        if let Err(error) = session.sockets.admit(Kind::Stream, socket::SOCKET_COST) {
            return SocketReply::Error(error);
        }
        self.next_port = if self.next_port >= 65000 {
            49152
        } else {
            self.next_port + 1
        };
        let mut tcp = new_tcp();
        let [a, b, c, d] = remote.address.0;
        let target = (IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), remote.port);
        if tcp
            .connect(self.iface.context(), target, self.next_port)
            .is_err()
        {
            return SocketReply::Error(SocketError::BadArgument);
        }
        match self.adopt(session, Kind::Stream, tcp) {
            Ok(socket) => SocketReply::Socket(socket),
            Err(error) => SocketReply::Error(error),
        }
    }

    fn bind(&mut self, session: &mut SocketSession, port: u16) -> SocketReply {
        let port = if port == 0 {
            match (socket::EPHEMERAL_FIRST..=u16::MAX).find(|p| !self.udp_ports.contains(p)) {
                Some(port) => port,
                None => return SocketReply::Error(SocketError::PortInUse { port: 0 }),
            }
        } else {
            port
        };
        let kind = Kind::Datagram { port };
        if let Err(error) = session.sockets.admit(kind, socket::SOCKET_COST) {
            log!("bind to UDP port {port} refused: {error}");
            return SocketReply::Error(error);
        }
        if self.udp_ports.contains(&port) {
            return SocketReply::Error(SocketError::PortInUse { port });
        }
        // Half the TCP buffers' bytes each way, in at most 8 datagrams.
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; 8],
                vec![0; socket::TCP_BUFFER_LEN],
            )
        };
        let mut udp = udp::Socket::new(buffer(), buffer());
        if udp.bind(port).is_err() {
            return SocketReply::Error(SocketError::BadArgument);
        }
        match self.adopt(session, kind, udp) {
            Ok(socket) => {
                self.udp_ports.insert(port);
                log!("UDP socket on port {port}");
                SocketReply::Socket(socket)
            }
            Err(error) => SocketReply::Error(error),
        }
    }

    fn datagram(
        &mut self,
        session: &SocketSession,
        id: SocketId,
    ) -> Result<SocketHandle, SocketError> {
        let entry = session.sockets.get(id)?;
        match entry.kind {
            Kind::Datagram { .. } => Ok(entry.stack),
            _ => Err(SocketError::WrongKind(id)),
        }
    }

    fn send_to(
        &mut self,
        session: &SocketSession,
        id: SocketId,
        remote: Endpoint,
        data: WindowRange,
    ) -> Result<SocketReply, SocketError> {
        let handle = self.datagram(session, id)?;
        let range = socket::check_window_range(data, session.window.len())?;
        socket::check_datagram(range.len())?;
        if !self.has_address() {
            return Err(SocketError::NoAddress);
        }
        let mut bytes = vec![0u8; range.len()];
        session
            .window
            .read_at(range.start, &mut bytes)
            .map_err(|_| SocketError::BadRange(data))?;
        let [a, b, c, d] = remote.address.0;
        let target = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), remote.port);
        let udp = self.sockets.get_mut::<udp::Socket>(handle);
        match udp.send_slice(&bytes, target) {
            Ok(()) => Ok(SocketReply::Sent {
                length: bytes.len() as u32,
            }),
            Err(udp::SendError::BufferFull) => Err(SocketError::WouldBlock),
            Err(udp::SendError::Unaddressable) => Err(SocketError::BadArgument),
        }
    }

    fn recv_from(
        &mut self,
        session: &SocketSession,
        id: SocketId,
        buffer: WindowRange,
    ) -> Result<SocketReply, SocketError> {
        let handle = self.datagram(session, id)?;
        let range = socket::check_window_range(buffer, session.window.len())?;
        let udp = self.sockets.get_mut::<udp::Socket>(handle);
        // Look before taking: a datagram longer than the buffer stays
        // queued (smoltcp's recv_slice would drop it).
        let (length, remote) = match udp.peek() {
            Ok((payload, meta)) => (payload.len(), meta.endpoint),
            Err(_) => return Err(SocketError::WouldBlock),
        };
        if length > range.len() {
            return Err(SocketError::DatagramLength {
                length: length as u32,
            });
        }
        let mut bytes = vec![0u8; length];
        let (length, _) = udp
            .recv_slice(&mut bytes)
            .map_err(|_| SocketError::WouldBlock)?;
        session
            .window
            .write_at(range.start, &bytes[..length])
            .map_err(|_| SocketError::BadRange(buffer))?;
        Ok(SocketReply::ReceivedFrom {
            length: length as u32,
            remote: endpoint_of(Some(remote)),
        })
    }

    fn stream(
        &mut self,
        session: &SocketSession,
        id: SocketId,
    ) -> Result<SocketHandle, SocketError> {
        let entry = session.sockets.get(id)?;
        match entry.kind {
            Kind::Stream => Ok(entry.stack),
            _ => Err(SocketError::WrongKind(id)),
        }
    }

    fn send(
        &mut self,
        session: &SocketSession,
        id: SocketId,
        data: WindowRange,
    ) -> Result<SocketReply, SocketError> {
        let handle = self.stream(session, id)?;
        let range = socket::check_window_range(data, session.window.len())?;
        let mut bytes = vec![0u8; range.len()];
        session
            .window
            .read_at(range.start, &mut bytes)
            .map_err(|_| SocketError::BadRange(data))?;
        let tcp = self.sockets.get_mut::<tcp::Socket>(handle);
        if !tcp.may_send() {
            return Err(SocketError::NotConnected);
        }
        let sent = tcp
            .send_slice(&bytes)
            .map_err(|_| SocketError::NotConnected)?;
        if sent == 0 && !bytes.is_empty() {
            return Err(SocketError::WouldBlock);
        }
        Ok(SocketReply::Sent {
            length: sent as u32,
        })
    }

    fn recv(
        &mut self,
        session: &SocketSession,
        id: SocketId,
        buffer: WindowRange,
    ) -> Result<SocketReply, SocketError> {
        let handle = self.stream(session, id)?;
        let range = socket::check_window_range(buffer, session.window.len())?;
        let mut bytes = vec![0u8; range.len()];
        let tcp = self.sockets.get_mut::<tcp::Socket>(handle);
        let received = if tcp.can_recv() {
            tcp.recv_slice(&mut bytes)
                .map_err(|_| SocketError::NotConnected)?
        } else if tcp.may_recv() || tcp.state() == tcp::State::SynSent {
            return Err(SocketError::WouldBlock);
        } else {
            0
        };
        session
            .window
            .write_at(range.start, &bytes[..received])
            .map_err(|_| SocketError::BadRange(buffer))?;
        Ok(SocketReply::Received {
            length: received as u32,
        })
    }

    fn state(&mut self, session: &SocketSession, id: SocketId) -> Result<SocketReply, SocketError> {
        let entry = session.sockets.get(id)?;
        if let Kind::Datagram { .. } = entry.kind {
            return Ok(SocketReply::State(SocketState::Datagram));
        }
        let tcp = self.sockets.get_mut::<tcp::Socket>(entry.stack);
        Ok(SocketReply::State(match (entry.kind, tcp.state()) {
            (Kind::Listener { .. }, _) => SocketState::Listening,
            (_, tcp::State::SynSent | tcp::State::SynReceived) => SocketState::Connecting,
            (_, tcp::State::Established) => SocketState::Established,
            (_, tcp::State::CloseWait) => SocketState::PeerClosed,
            _ => SocketState::Closed,
        }))
    }

    /// Closes a socket: TCP sends its FIN from the stack's side; smoltcp's
    /// socket is removed once it reached Closed or TimeWait.
    fn close_socket(&mut self, kind: Kind, handle: SocketHandle) {
        match kind {
            Kind::Listener { port } => {
                self.ports.remove(&port);
            }
            Kind::Datagram { port } => {
                // Nothing to say goodbye with: gone at once.
                self.udp_ports.remove(&port);
                self.sockets.remove(handle);
                return;
            }
            Kind::Stream => {}
        }
        self.sockets.get_mut::<tcp::Socket>(handle).close();
        self.closing.push(handle);
    }

    /// Removes closed sockets from smoltcp's set.
    fn reap(&mut self) {
        let sockets = &mut self.sockets;
        self.closing.retain(|&handle| {
            let state = sockets.get_mut::<tcp::Socket>(handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(handle);
            }
            !done
        });
    }
}

/// A reply to either kind of session.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Reply {
    Socket(SocketReply),
    Uplink(uplink::UplinkReply),
}

impl Service for Stack {
    type Session = Client;
    type Reply = Reply;

    fn create(
        &mut self,
        service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<Client, SessionError> {
        if service == uplink::SERVICE {
            if self.device.attached() {
                log!("Uplink session for \"{label}\" refused: a driver's session is open");
                return Err(SessionError::AlreadyClaimed);
            }
            let port = UplinkPort::create(args, quota)?;
            let mac = port.args.mac;
            self.iface
                .set_hardware_addr(HardwareAddress::Ethernet(EthernetAddress(mac.0)));
            self.device.attach(port);
            log!(
                "Uplink session for \"{label}\": MAC {mac}, link up, {} socket(s) kept",
                self.sockets.iter().count()
            );
            return Ok(Client::Uplink);
        }
        self.create_sockets(label, args, quota).map(Client::Sockets)
    }

    fn opened(&mut self, session: &Entry<Client>) {
        let Client::Sockets(state) = &session.state else {
            return;
        };
        let policy = state.sockets.policy();
        log!(
            "Socket session {} for \"{}\": up to {} sockets, ports {:?}",
            session.badge,
            session.label,
            policy.max_sockets,
            policy.listen
        );
    }

    fn upgrade(&mut self, session: &mut Entry<Client>) -> Result<(), SessionError> {
        if let Client::Sockets(state) = &mut session.state {
            let window_len = state.window.len() as u32;
            let args = SocketArgs { window_len };
            state.sockets.set_budget(budget_of(session.quota, &args));
        }
        Ok(())
    }

    fn close(&mut self, session: Entry<Client>) {
        match session.state {
            Client::Sockets(state) => self.close_sockets(state),
            Client::Uplink => {
                self.device.detach();
                log!(
                    "Uplink session closed: link down, {} socket(s) kept, {} frame(s) refused so far",
                    self.sockets.iter().count(),
                    self.device.refused()
                );
            }
        }
    }

    fn handle(&mut self, session: &mut Entry<Client>, call: &mut Call<'_>) -> Reply {
        let reply = match &mut session.state {
            Client::Sockets(state) => {
                Reply::Socket(self.handle_socket(state, &session.label, call))
            }
            Client::Uplink => match self.device.port_mut() {
                Some(port) => {
                    let reply = port.handle(call, self.uplink_kick);
                    if !port.link_up {
                        log!("the driver reports its link down");
                    }
                    Reply::Uplink(reply)
                }
                None => Reply::Uplink(uplink::UplinkReply::Error(SessionError::BadRequest)),
            },
        };
        self.poll();
        reply
    }

    fn error(error: SessionError) -> Reply {
        Reply::Socket(SocketReply::Error(error.into()))
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Client>) {
        if bits & (UPLINK_BIT | TIMER_BIT) != 0 {
            self.poll();
            self.reap();
            // Progress may concern any session: wake them all (a few
            // applications per stack; a spurious wake-up costs one retry).
            if bits & UPLINK_BIT != 0 {
                for entry in sessions.iter_mut() {
                    if let Client::Sockets(state) = &entry.state
                        && let Some(notification) = state.notification
                    {
                        let _ = sys::signal(notification);
                    }
                }
            }
        }
    }
}

impl Stack {
    fn create_sockets(
        &mut self,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<SocketSession, SessionError> {
        let args: SocketArgs = decode(args)?;
        args.check().map_err(|_| SessionError::BadRequest)?;
        quota.require(Quota {
            ram: u64::from(args.window_len) + socket::SESSION_OVERHEAD,
            caps: socket::SERVER_CAPS,
        })?;
        let policy = policy_for(&self.config.policy, label);
        let (window_cap, window) = bulk::new_shared_region(args.window_len as usize)?;
        Ok(SocketSession {
            sockets: ClientSockets::new(policy, budget_of(quota, &args)),
            window_cap,
            window,
            notification: None,
        })
    }

    fn close_sockets(&mut self, mut state: SocketSession) {
        let open: Vec<(SocketId, Kind)> =
            state.sockets.iter().map(|(id, s)| (id, s.kind)).collect();
        for (id, kind) in open {
            if let Ok(socket) = state.sockets.remove(id) {
                self.close_socket(kind, socket.stack);
            }
        }
        let SocketSession {
            window_cap,
            window,
            notification,
            ..
        } = state;
        drop(window);
        let _ = sys::destroy(window_cap);
        slots::release(window_cap);
        if let Some(cap) = notification {
            slots::release(cap);
        }
        self.poll();
    }

    fn handle_socket(
        &mut self,
        state: &mut SocketSession,
        label: &str,
        call: &mut Call<'_>,
    ) -> SocketReply {
        let request = match call.request::<SocketRequest>() {
            Ok(request) => request,
            Err(error) => return SocketReply::Error(error.into()),
        };
        let reply = match request {
            SocketRequest::Window => {
                call.reply_cap(state.window_cap);
                Ok(SocketReply::Window {
                    len: state.window.len() as u32,
                })
            }
            SocketRequest::SetNotification => match call.take_cap() {
                Ok(Some(cap)) => {
                    if let Some(old) = state.notification.replace(cap) {
                        slots::release(old);
                    }
                    Ok(SocketReply::Done)
                }
                Ok(None) => Err(SocketError::BadArgument),
                Err(error) => Err(error.into()),
            },
            SocketRequest::Listen { port, backlog } => Ok(self.listen(state, port, backlog)),
            SocketRequest::Accept { listener } => Ok(self.accept(state, listener)),
            SocketRequest::Connect { remote } => Ok(self.connect(state, remote)),
            SocketRequest::Send { socket, data } => self.send(state, socket, data),
            SocketRequest::Recv { socket, buffer } => self.recv(state, socket, buffer),
            SocketRequest::State { socket } => self.state(state, socket),
            SocketRequest::Close { socket } => match state.sockets.remove(socket) {
                Ok(removed) => {
                    self.close_socket(removed.kind, removed.stack);
                    if state.sockets.len() <= 1 {
                        // The figures a test compares with the start: a
                        // session back to its listener holds what it did then.
                        let used = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0))
                            .map_or(0, |(_, used)| used);
                        log!(
                            "\"{}\": {} socket(s) left, {} bytes charged; stack RAM in use {} KiB",
                            label,
                            state.sockets.len(),
                            state.sockets.charged(),
                            used / 1024
                        );
                    }
                    Ok(SocketReply::Done)
                }
                Err(error) => Err(error),
            },
            SocketRequest::Bind { port } => Ok(self.bind(state, port)),
            SocketRequest::SendTo {
                socket,
                remote,
                data,
            } => self.send_to(state, socket, remote, data),
            SocketRequest::RecvFrom { socket, buffer } => self.recv_from(state, socket, buffer),
        };
        match reply {
            Ok(reply) => reply,
            Err(error) => SocketReply::Error(error),
        }
    }
}
