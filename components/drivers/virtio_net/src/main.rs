//! virtio_net: the virtio-net driver. It drives virtio-drivers'
//! `VirtIONetRaw` on its Platform session (one device, its BAR mapped, its
//! interrupt bound to the server's notification) and serves a Nic session.
//!
//! Interrupt-driven with several frames in flight both ways: up to
//! [`RECEIVE_SLOTS`] receive buffers sit on the device's receive queue and
//! up to [`TRANSMIT_SLOTS`] frames on its transmit queue; the loop wakes on
//! the device's interrupt (a frame arrived or a transmit finished) and on a
//! client's kick (frames or receive buffers submitted), never on a timer.
//! The MAC address and the link state come from the device's config space.
//!
//! What it never trusts: a client's descriptor lengths (checked with
//! [`nic::check_transmit_frame`] before a byte is read), and the device's
//! tokens and lengths (a token not in flight stops the driver; a received
//! length outside an Ethernet frame is dropped and counted).
//!
//! With `crash_after_frames` in its config it faults on purpose after that
//! many frames, with frames on its queues, leaving FAILED in the device's
//! status so that the restarted driver resets the device and does not
//! fault again (the restart test).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use arbor::abi::CapSlot;
use arbor::packet_stream::{self, Request, Status};
use arbor::{slots, sys};
use arbor_sessions::bulk;
use arbor_sessions::nic::{
    self, MAX_FRAME_LEN, MacAddress, NicArgs, NicInfo, NicReply, NicRequest, ReceivedFrame,
    StreamKind,
};
use arbor_sessions::platform::{BUS_MASTER, Platform, SESSION_RAM};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{SessionError, client, decode, env, log};
use arbor_virtio::virtio_drivers::device::net::VirtIONetRaw;
use arbor_virtio::virtio_drivers::transport::pci::PciTransport;
use arbor_virtio::virtio_drivers::transport::{DeviceStatus, DeviceType, Transport};
use arbor_virtio::{ArborHal, POOL_PAGES, VirtioDevice};
use virtio_net::InFlight;
use virtio_net::config::Config;

arbor::entry!(run);

/// The session's quota: bookkeeping, BARs, the interrupt and the DMA pool.
const PLATFORM_RAM: u64 = SESSION_RAM + (POOL_PAGES as u64 + 1) * 4096;
/// Entries of each virtqueue.
const QUEUE_SIZE: usize = 16;
/// Receive buffers on the device's queue (one DMA pool page each while there).
const RECEIVE_SLOTS: usize = 8;
/// Frames on the device's transmit queue (one DMA pool page each while there).
const TRANSMIT_SLOTS: usize = 8;
/// Bytes of one device buffer: the virtio-net header (12 bytes) and the
/// longest frame, rounded up.
const BUFFER_LEN: usize = 1536;
/// Server notification bits: the device's interrupt and a client's kick.
const IRQ_BIT: u64 = 1;
const KICK_BIT: u64 = 2;
/// The server's bookkeeping per session, beyond the shared memory.
const SESSION_OVERHEAD: u64 = 16 * 1024;
/// Offset of `status` in virtio-net's config space (after the MAC), and
/// its link-up bit (virtio 1.2, 5.1.4).
const CONFIG_STATUS: usize = 6;
const LINK_UP: u16 = 1;

type Net = VirtIONetRaw<ArborHal, PciTransport, QUEUE_SIZE>;
/// Device buffers, on the heap so they stay in place while the device holds them.
type Buffers = Box<[[u8; BUFFER_LEN]]>;

fn run(_argument: u64) {
    match serve() {
        Ok(never) => match never {},
        Err(error) => {
            log!("failed: {error}");
            client::exit(1);
        }
    }
}

/// The device: its queues and the buffers on them.
struct Card {
    net: Net,
    /// A second handle on the device's registers: link state, and the
    /// FAILED mark before an injected fault.
    registers: PciTransport,
    device: VirtioDevice,
    header_len: usize,
    receiving: InFlight<RECEIVE_SLOTS>,
    receive_buffers: Buffers,
    sending: InFlight<TRANSMIT_SLOTS>,
    send_buffers: Buffers,
    send_lengths: [usize; TRANSMIT_SLOTS],
    /// Frames moved both ways, and after how many to fault (config).
    frames: u64,
    crash_after: Option<u64>,
    /// Received lengths that were no Ethernet frame.
    dropped: u64,
}

impl Card {
    /// Puts every receive buffer that is not on the queue on it.
    fn post_receive_buffers(&mut self) -> Result<(), String> {
        while let Some(slot) = self.receiving.free_slot() {
            let buffer = &mut self.receive_buffers[slot];
            // SAFETY: the buffer is heap memory owned by `self` that is not
            // touched until `receive_complete` passes it again for this
            // token (its slot stays taken until then).
            let token = unsafe { self.net.receive_begin(buffer) }
                .map_err(|e| format!("posting a receive buffer: {e}"))?;
            self.receiving.start(slot, token);
        }
        Ok(())
    }

    /// Completes every frame the device received, hands each to
    /// `deliver`, and puts the buffers back on the queue.
    fn take_received(&mut self, mut deliver: impl FnMut(&[u8])) -> Result<(), String> {
        while let Some(token) = self.net.poll_receive() {
            let Some(slot) = self.receiving.finish(token) else {
                return Err(format!(
                    "the device finished receive token {token}, which is not in flight"
                ));
            };
            let buffer = &mut self.receive_buffers[slot];
            // SAFETY: the same buffer `receive_begin` was given for `token`.
            let (header, length) = unsafe { self.net.receive_complete(token, buffer) }
                .map_err(|e| format!("completing a receive: {e}"))?;
            let frame = header
                .checked_add(length)
                .filter(|_| nic::check_transmit_frame(length).is_ok())
                .and_then(|end| buffer.get(header..end));
            match frame {
                Some(frame) => {
                    deliver(frame);
                    self.count_frame();
                }
                None => {
                    self.dropped += 1;
                    if self.dropped <= 4 {
                        log!("dropped a received frame of {length} bytes (header {header})");
                    }
                }
            }
        }
        self.post_receive_buffers()
    }

    /// Frees the transmit slots of frames the device sent.
    fn reclaim_sent(&mut self) -> Result<(), String> {
        while let Some(token) = self.net.poll_transmit() {
            let Some(slot) = self.sending.finish(token) else {
                return Err(format!(
                    "the device finished transmit token {token}, which is not in flight"
                ));
            };
            let buffer = &self.send_buffers[slot][..self.send_lengths[slot]];
            // SAFETY: the same buffer range `transmit_begin` was given.
            unsafe { self.net.transmit_complete(token, buffer) }
                .map_err(|e| format!("completing a transmit: {e}"))?;
        }
        Ok(())
    }

    fn can_send(&self) -> bool {
        self.sending.free_slot().is_some()
    }

    /// Sends a frame of `length` bytes (checked by the caller) that `fill`
    /// writes; the fill's error leaves the slot free and is returned.
    fn send<E>(
        &mut self,
        length: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, String> {
        let Some(slot) = self.sending.free_slot() else {
            return Err(String::from("no transmit slot"));
        };
        let header = self.header_len;
        let buffer = &mut self.send_buffers[slot];
        let Some(frame) = buffer.get_mut(header..header + length) else {
            return Err(format!("frame of {length} bytes does not fit"));
        };
        if let Err(error) = fill(frame) {
            return Ok(Err(error));
        }
        self.net
            .fill_buffer_header(buffer)
            .map_err(|e| format!("virtio-net header: {e}"))?;
        let used = &buffer[..header + length];
        // SAFETY: the buffer is heap memory owned by `self` that is not
        // written until `transmit_complete` passes the same range again for
        // this token (its slot stays taken until then).
        let token =
            unsafe { self.net.transmit_begin(used) }.map_err(|e| format!("transmitting: {e}"))?;
        self.sending.start(slot, token);
        self.send_lengths[slot] = header + length;
        self.count_frame();
        Ok(Ok(()))
    }

    fn link_up(&self) -> bool {
        // A device without the status field is always up.
        self.registers
            .read_config_space::<u16>(CONFIG_STATUS)
            .map_or(true, |status| status & LINK_UP != 0)
    }

    fn count_frame(&mut self) {
        self.frames += 1;
        if self.crash_after.is_some_and(|after| self.frames >= after) {
            let status = self.registers.get_status();
            self.registers.set_status(status | DeviceStatus::FAILED);
            log!(
                "fault injected: faulting with {} receive buffer(s) and {} frame(s) on the queues",
                self.receiving.count(),
                self.sending.count()
            );
            // SAFETY: none; this is the deliberate fault the restart test is
            // about (address 8, the dangling pointer, is never mapped).
            unsafe { core::ptr::write_volatile(core::ptr::dangling_mut::<u64>(), 0) };
        }
    }
}

/// Opens the session, retrying while an earlier incarnation's session is
/// still being closed (its device is quiesced first).
fn open_platform() -> Result<&'static Platform, String> {
    let mut attempts = 0;
    loop {
        match Platform::open("", PLATFORM_RAM) {
            Ok(platform) => return Ok(Box::leak(Box::new(platform))),
            Err(SessionError::AlreadyClaimed) if attempts < 50 => {
                attempts += 1;
                client::pause(10);
            }
            Err(error) => return Err(format!("Platform session: {error}")),
        }
    }
}

fn serve() -> Result<core::convert::Infallible, String> {
    let config: Config = env::config().map_err(|e| format!("config: {e}"))?;
    let platform = open_platform()?;
    if platform.device_count().map_err(|e| format!("{e}"))? == 0 {
        return Err(String::from("the platform driver gave it no device"));
    }
    let server = Server::new().map_err(|e| format!("server endpoint: {e}"))?;
    let irq_signal = server
        .signal_cap(IRQ_BIT)
        .map_err(|e| format!("interrupt capability: {e}"))?;
    let (device, mut root) =
        VirtioDevice::open_signalling(platform, 0, Some(irq_signal)).map_err(|e| format!("{e}"))?;
    slots::release(irq_signal);
    platform
        .set_command(0, 0x2 | BUS_MASTER)
        .map_err(|e| format!("{e}"))?;
    let transport = PciTransport::new::<ArborHal, _>(&mut root, device.function)
        .map_err(|e| format!("virtio transport: {e}"))?;
    let registers = PciTransport::new::<ArborHal, _>(&mut root, device.function)
        .map_err(|e| format!("virtio transport: {e}"))?;
    if transport.device_type() != DeviceType::Network {
        return Err(format!(
            "device 0 is a {:?} device, not Network",
            transport.device_type()
        ));
    }
    let mut crash_after = config.crash_after_frames;
    let status = transport.get_status();
    if status.contains(DeviceStatus::FAILED) {
        log!(
            "found status {:#x} (FAILED) left by the incarnation that faulted; resetting the device",
            status.bits()
        );
        crash_after = None;
    }
    // `new` resets the device before it negotiates.
    let net = Net::new(transport).map_err(|e| format!("virtio-net: {e}"))?;
    let mut probe = [0u8; 32];
    let header_len = net
        .fill_buffer_header(&mut probe)
        .map_err(|e| format!("virtio-net header: {e}"))?;
    let mac = MacAddress(net.mac_address());
    let mut card = Card {
        net,
        registers,
        device,
        header_len,
        receiving: InFlight::default(),
        receive_buffers: alloc::vec![[0u8; BUFFER_LEN]; RECEIVE_SLOTS].into_boxed_slice(),
        sending: InFlight::default(),
        send_buffers: alloc::vec![[0u8; BUFFER_LEN]; TRANSMIT_SLOTS].into_boxed_slice(),
        send_lengths: [0; TRANSMIT_SLOTS],
        frames: 0,
        crash_after,
        dropped: 0,
    };
    card.post_receive_buffers()?;
    let link_up = card.link_up();
    log!(
        "{} on line {}: MAC {mac}, link {}",
        card.device.info.address,
        card.device.line,
        if link_up { "up" } else { "down" }
    );
    let kick = server
        .signal_cap(KICK_BIT)
        .map_err(|e| format!("kick capability: {e}"))?;
    let driver = Driver {
        card,
        mac,
        link_up,
        kick,
        refused: 0,
    };
    let error = server.serve(&[nic::SERVICE], driver);
    Err(format!("stopped: {error}"))
}

/// One Nic session: its two streams and the receive buffers it lent.
struct Port {
    args: NicArgs,
    transmit: packet_stream::Server,
    receive: packet_stream::Server,
    transmit_dataspace: CapSlot,
    receive_dataspace: CapSlot,
    /// Receive buffers the client submitted, waiting for a frame.
    buffers: VecDeque<Request>,
    notification: Option<CapSlot>,
    /// The client broke its ring; the port carries nothing more.
    broken: bool,
    /// Acknowledgements were written since the client was last woken.
    wake: bool,
}

struct Driver {
    card: Card,
    mac: MacAddress,
    link_up: bool,
    kick: CapSlot,
    /// Client frames refused (bad length, opcode or descriptor).
    refused: u64,
}

impl Service for Driver {
    type Session = Port;
    type Reply = NicReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<Port, SessionError> {
        let args: NicArgs = decode(args)?;
        args.check().map_err(|_| SessionError::BadRequest)?;
        let shared = args.shared_bytes().map_err(|_| SessionError::BadRequest)?;
        quota.require(Quota {
            ram: shared + SESSION_OVERHEAD,
            caps: nic::SERVER_CAPS,
        })?;
        let transmit_len = args
            .stream_len(StreamKind::Transmit)
            .map_err(|_| SessionError::BadRequest)?;
        let receive_len = args
            .stream_len(StreamKind::Receive)
            .map_err(|_| SessionError::BadRequest)?;
        let (transmit_dataspace, transmit_region) = bulk::new_shared_region(transmit_len)?;
        let (receive_dataspace, receive_region) = match bulk::new_shared_region(receive_len) {
            Ok(made) => made,
            Err(error) => {
                drop(transmit_region);
                let _ = sys::destroy(transmit_dataspace);
                slots::release(transmit_dataspace);
                return Err(error);
            }
        };
        let transmit = packet_stream::Server::new(transmit_region, args.transmit_entries)
            .map_err(|_| SessionError::BadRequest)?;
        let receive = packet_stream::Server::new(receive_region, args.receive_entries)
            .map_err(|_| SessionError::BadRequest)?;
        Ok(Port {
            args,
            transmit,
            receive,
            transmit_dataspace,
            receive_dataspace,
            buffers: VecDeque::new(),
            notification: None,
            broken: false,
            wake: false,
        })
    }

    fn opened(&mut self, session: &Entry<Port>) {
        log!("session {} for \"{}\"", session.badge, session.label);
    }

    fn close(&mut self, session: Entry<Port>) {
        let Port {
            transmit,
            receive,
            transmit_dataspace,
            receive_dataspace,
            notification,
            buffers,
            ..
        } = session.state;
        // Unmap the regions (by dropping the servers) before destroying.
        drop(buffers);
        drop(transmit);
        drop(receive);
        for cap in [transmit_dataspace, receive_dataspace] {
            let _ = sys::destroy(cap);
            slots::release(cap);
        }
        if let Some(cap) = notification {
            slots::release(cap);
        }
        log!(
            "session {} closed ({} frames moved, {} refused so far)",
            session.badge,
            self.card.frames,
            self.refused
        );
    }

    fn handle(&mut self, session: &mut Entry<Port>, call: &mut Call<'_>) -> NicReply {
        let port = &mut session.state;
        match call.request::<NicRequest>() {
            Ok(NicRequest::Info) => NicReply::Info(NicInfo {
                mac: self.mac,
                link_up: self.link_up,
                max_frame_len: MAX_FRAME_LEN as u16,
            }),
            Ok(NicRequest::Stream(kind)) => {
                let (cap, entries) = match kind {
                    StreamKind::Transmit => (port.transmit_dataspace, port.args.transmit_entries),
                    StreamKind::Receive => (port.receive_dataspace, port.args.receive_entries),
                };
                match port.args.stream_len(kind) {
                    Ok(len) => {
                        call.reply_cap(cap);
                        NicReply::Stream {
                            region_len: len as u64,
                            entries,
                        }
                    }
                    Err(_) => NicReply::Error(SessionError::BadRequest),
                }
            }
            Ok(NicRequest::SetNotification) => match call.take_cap() {
                Ok(Some(cap)) => {
                    if let Some(old) = port.notification.replace(cap) {
                        slots::release(old);
                    }
                    NicReply::Done
                }
                Ok(None) => NicReply::Error(SessionError::BadRequest),
                Err(error) => NicReply::Error(error),
            },
            Ok(NicRequest::ServerSignal) => {
                call.reply_cap(self.kick);
                NicReply::Done
            }
            Err(error) => NicReply::Error(error),
        }
    }

    fn error(error: SessionError) -> NicReply {
        NicReply::Error(error)
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Port>) {
        if bits & IRQ_BIT != 0 {
            // Reading the ISR deasserts the shared INTx line; only then may
            // it fire again.
            let _ = self.card.net.ack_interrupt();
            if let Err(error) = self.card.device.acknowledge() {
                log!("acknowledging the interrupt: {error}");
            }
        }
        if let Err(error) = self.pump(sessions) {
            // The device's queues cannot be trusted any more: stop, and let
            // init's policy restart the driver (which resets the device).
            log!("{error}; giving up on the device");
            client::exit(2);
        }
    }
}

impl Driver {
    /// Moves frames both ways until nothing more can move now.
    fn pump(&mut self, sessions: &mut SessionTable<Port>) -> Result<(), String> {
        self.card.reclaim_sent()?;
        for entry in sessions.iter_mut() {
            let badge = entry.badge;
            let port = &mut entry.state;
            if port.broken {
                continue;
            }
            let taken = self
                .take_receive_buffers(port)
                .and_then(|()| self.take_transmits(badge, port));
            if let Err(error) = taken {
                log!("session {badge}: ring unusable ({error:?}); port cut off");
                port.broken = true;
            }
        }
        self.card.take_received(|frame| {
            for entry in sessions.iter_mut() {
                if !entry.state.broken {
                    deliver(&mut entry.state, frame);
                }
            }
        })?;
        let link_up = self.card.link_up();
        let link_changed = link_up != self.link_up;
        if link_changed {
            self.link_up = link_up;
            log!("link {}", if link_up { "up" } else { "down" });
        }
        for entry in sessions.iter_mut() {
            let port = &mut entry.state;
            if (core::mem::take(&mut port.wake) || link_changed)
                && let Some(notification) = port.notification
            {
                let _ = sys::signal(notification);
            }
        }
        Ok(())
    }

    fn take_receive_buffers(&mut self, port: &mut Port) -> Result<(), packet_stream::Error> {
        while let Some((request, _)) = port.receive.next_request()? {
            port.buffers.push_back(request);
        }
        Ok(())
    }

    /// Sends the port's submitted frames while the device has room,
    /// acknowledging each (the frame is copied out first).
    fn take_transmits(&mut self, badge: u64, port: &mut Port) -> Result<(), packet_stream::Error> {
        while self.card.can_send() {
            let Some((request, _)) = port.transmit.next_request()? else {
                break;
            };
            let checked = match request.payload() {
                Ok(packet) if request.opcode() == nic::TRANSMIT => {
                    nic::check_transmit_frame(packet.length())
                        .map(|()| packet.length())
                        .map_err(|error| format!("{error}"))
                }
                Ok(_) => Err(format!("opcode {:?}", request.opcode())),
                Err(error) => Err(format!("{error:?}")),
            };
            let status = match checked {
                Ok(length) => {
                    let transmit = &port.transmit;
                    let send = self.card.send(length, |frame| {
                        request
                            .payload()
                            .and_then(|packet| transmit.read(packet, 0, frame))
                    });
                    match send {
                        Ok(Ok(())) => Status::OK,
                        Ok(Err(_)) => Status::BAD_DESCRIPTOR,
                        Err(error) => {
                            log!("{error}");
                            Status::FAILED
                        }
                    }
                }
                Err(what) => {
                    self.refused += 1;
                    log!("session {badge}: frame refused: {what}");
                    if request.payload().is_err() {
                        Status::BAD_DESCRIPTOR
                    } else {
                        nic::FRAME_REFUSED
                    }
                }
            };
            let _ = port.transmit.acknowledge(request, status)?;
            port.wake = true;
        }
        Ok(())
    }
}

/// Writes `frame` into the port's oldest receive buffer; false when it has
/// none (the frame is lost, as on a real wire) or the buffer is bad.
fn deliver(port: &mut Port, frame: &[u8]) -> bool {
    let Some(request) = port.buffers.pop_front() else {
        return false;
    };
    let written = request.payload().and_then(|packet| {
        let prefix = ReceivedFrame::encode(frame.len(), packet.length())
            .map_err(|_| packet_stream::Error::OutOfPacket)?;
        port.receive.write(packet, 0, &prefix)?;
        port.receive.write(packet, nic::LENGTH_PREFIX_LEN, frame)
    });
    let status = match written {
        Ok(()) => Status::OK,
        Err(_) => Status::BAD_DESCRIPTOR,
    };
    if port.receive.acknowledge(request, status).is_err() {
        port.broken = true;
        return false;
    }
    port.wake = true;
    written.is_ok()
}
