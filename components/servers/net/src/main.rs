//! net: the TCP/IP stack component. It drives smoltcp over a Nic session:
//! DHCP (with a static fallback from its config) or a static address, ARP,
//! IPv4 and ICMP echo (smoltcp answers pings itself), and, with `ping` in
//! its config, pings an address once and logs the reply.
//!
//! Everything arrives on the server framework's notification: the Nic
//! server's signal (frames or acknowledgements wait) and a 10 ms periodic
//! Timer signal that drives smoltcp's timers. When the Nic session breaks
//! (its provider died or broke the protocol), the stack keeps its sockets
//! and opens a new session to the restarted provider.
//!
//! Not here yet: the Socket service (its types are in
//! `arbor_sessions::socket`, its policy and socket table in this crate's
//! library); the stack announces nothing until it is.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod device;

use alloc::vec;
use arbor::abi::CapSlot;
use arbor_sessions::client::{self, Session, TIMER_SESSION_RAM, call, open_session};
use arbor_sessions::nic::{NicArgs, NicClient};
use arbor_sessions::server::{Server, Service};
use arbor_sessions::services::{TimerReply, TimerRequest, name};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{Interface as Ipc, SessionError, env, log};
use device::NicDevice;
use net::config::{AddressConfig, Config, StaticAddress};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, icmp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, Ipv4Address,
};

arbor::entry!(run);

/// Server notification bit the Nic server signals.
const NIC_BIT: u64 = 1;
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
    let nic_signal = server.signal_cap(NIC_BIT).map_err(|e| ("signal", e))?;
    let timer_signal = server.signal_cap(TIMER_BIT).map_err(|e| ("signal", e))?;
    let timer = open_session(name::TIMER, "", &(), TIMER_SESSION_RAM, None)
        .map_err(|e| ("Timer session", e))?;
    timer_request(&timer, TimerRequest::SetNotification, Some(timer_signal))
        .map_err(|e| ("Timer notification", e))?;
    timer_request(&timer, TimerRequest::Periodic { ms: TICK_MS }, None)
        .map_err(|e| ("Timer period", e))?;
    let nic = open_nic(nic_signal).map_err(|e| ("Nic session", e))?;
    let mac = nic.info.mac;
    let mut device = NicDevice::new(nic);
    let now = now(&timer);
    let mut iface = Interface::new(
        IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac.0))),
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
        "MAC {mac}; {}",
        if dhcp.is_some() {
            "asking DHCP"
        } else {
            "static address"
        }
    );
    let stack = Stack {
        config,
        timer,
        nic_signal,
        device,
        iface,
        sockets,
        dhcp,
        started: now,
        ping: None,
        ping_done: false,
    };
    let error = server.serve(&[], stack);
    Err(("serving", error))
}

fn open_nic(signal: CapSlot) -> Result<NicClient, SessionError> {
    NicClient::open("", NicArgs::default(), signal).map_err(|error| match error {
        arbor_sessions::nic::NicClientError::Session(error) => error,
        _ => SessionError::BadRequest,
    })
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

/// The stack: smoltcp's interface and sockets over the Nic device.
struct Stack {
    config: Config,
    timer: Session,
    nic_signal: CapSlot,
    device: NicDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    started: Instant,
    /// The ICMP socket and when the echo request left.
    ping: Option<(SocketHandle, Option<Instant>)>,
    ping_done: bool,
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
        if let Some(error) = self.device.take_failure() {
            log!("Nic session failed ({error}); reconnecting, sockets kept");
            self.reconnect();
        }
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

    fn reconnect(&mut self) {
        loop {
            match open_nic(self.nic_signal) {
                Ok(nic) => {
                    log!("Nic session reopened (MAC {})", nic.info.mac);
                    self.device.replace(nic);
                    return;
                }
                Err(error) => {
                    log!("Nic session: {error}; trying again");
                    client::pause(100);
                }
            }
        }
    }
}

impl Service for Stack {
    type Session = ();
    type Reply = ();

    fn create(&mut self, _: &str, _: &str, _: &[u8], _: Quota) -> Result<(), SessionError> {
        Err(SessionError::Denied)
    }

    fn handle(&mut self, _: &mut Entry<()>, _: &mut arbor_sessions::server::Call<'_>) {}

    fn error(_: SessionError) {}

    fn signal(&mut self, bits: u64, _: &mut SessionTable<()>) {
        if bits & (NIC_BIT | TIMER_BIT) != 0 {
            self.poll();
        }
    }
}
