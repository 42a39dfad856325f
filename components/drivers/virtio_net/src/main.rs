//! virtio_net: the virtio-net driver. It drives virtio-drivers'
//! `VirtIONetRaw` on its Platform session (one device, its BAR mapped, its
//! interrupt bound to its notification) and is the *client* of the network
//! stack's Uplink session (`arbor_sessions::uplink`, which says why the
//! stack owns the shared memory): frames from the wire go up to the stack,
//! frames the stack fills go down to the wire.
//!
//! Interrupt-driven with several frames in flight both ways: up to
//! [`RECEIVE_SLOTS`] receive buffers sit on the device's receive queue and
//! up to [`TRANSMIT_SLOTS`] frames on its transmit queue; the loop wakes on
//! the device's interrupt (a frame arrived or a transmit finished) and on
//! the stack's signal (frames to send or buffers back), never on a timer.
//! The MAC address and the link state come from the device's config space;
//! the MAC goes to the stack in the session arguments, link changes as
//! requests.
//!
//! What it never trusts: the stack's frame lengths (checked by the session
//! client before a byte is read), and the device's tokens and lengths (a
//! token not in flight stops the driver; a received length outside an
//! Ethernet frame is dropped and counted). A driver whose stack dies
//! fails on its next frame and is restarted by init's policy.
//!
//! With `crash_after_frames` in its config it faults on purpose after that
//! many frames, with frames on its queues, leaving FAILED in the device's
//! status so that the restarted driver resets the device and does not
//! fault again (the restart test).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use arbor::abi::Rights;
use arbor::{slots, sys};
use arbor_sessions::platform::{BUS_MASTER, Platform, SESSION_RAM};
use arbor_sessions::uplink::{self, MAX_FRAME_LEN, MacAddress, UplinkArgs, UplinkClient};
use arbor_sessions::{client, env, log};
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
/// Notification bits: the device's interrupt (the badge
/// `VirtioDevice::open` gives it) and the stack's signal.
const IRQ_BIT: u64 = 1;
const STACK_BIT: u64 = 2;
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
                .filter(|_| uplink::check_frame(length).is_ok())
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

fn serve() -> Result<core::convert::Infallible, String> {
    let config: Config = env::config().map_err(|e| format!("config: {e}"))?;
    let platform: &'static Platform = Box::leak(Box::new(
        Platform::open_after_restart("", PLATFORM_RAM)
            .map_err(|error| format!("Platform session: {error}"))?,
    ));
    if platform.device_count().map_err(|e| format!("{e}"))? == 0 {
        return Err(String::from("the platform driver gave it no device"));
    }
    let (device, mut root) = VirtioDevice::open(platform, 0).map_err(|e| format!("{e}"))?;
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
    let mut link_up = card.link_up();
    log!(
        "{} on line {}: MAC {mac}, link {}",
        card.device.info.address,
        card.device.line,
        if link_up { "up" } else { "down" }
    );
    let stack_signal = slots::allocate().map_err(|e| format!("{e:?}"))?;
    sys::derive(
        card.device.notification,
        stack_signal,
        Rights::WRITE.union(Rights::GRANT),
        STACK_BIT,
    )
    .map_err(|e| format!("stack signal: {e:?}"))?;
    let mut stack = UplinkClient::open_when_free("", UplinkArgs::new(mac), stack_signal)
        .map_err(|e| format!("Uplink session: {e}"))?;
    if !link_up {
        stack.set_link(false).map_err(|e| format!("Uplink: {e}"))?;
    }
    log!("Uplink session open");
    let mut frame = alloc::vec![0u8; MAX_FRAME_LEN];
    loop {
        let bits = sys::wait(card.device.notification).map_err(|e| format!("wait: {e:?}"))?;
        if bits & IRQ_BIT != 0 {
            // Reading the ISR deasserts the shared INTx line; only then may
            // it fire again.
            let _ = card.net.ack_interrupt();
            card.device
                .acknowledge()
                .map_err(|e| format!("acknowledging the interrupt: {e}"))?;
        }
        pump(&mut card, &mut stack, &mut frame)?;
        let now_up = card.link_up();
        if now_up != link_up {
            link_up = now_up;
            log!("link {}", if link_up { "up" } else { "down" });
            stack
                .set_link(link_up)
                .map_err(|e| format!("Uplink: {e}"))?;
        }
    }
}

/// Moves frames both ways until nothing more can move now.
fn pump(card: &mut Card, stack: &mut UplinkClient, frame: &mut [u8]) -> Result<(), String> {
    card.reclaim_sent()?;
    let mut sent = false;
    while card.can_send() {
        let Some(length) = stack
            .next_to_send(frame)
            .map_err(|e| format!("the stack's frame: {e}"))?
        else {
            break;
        };
        // The copy cannot fail; the inner result is the fill's.
        let _ = card.send(length, |out| {
            out.copy_from_slice(&frame[..length]);
            Ok::<(), ()>(())
        })?;
        sent = true;
    }
    let mut failure = None;
    let mut delivered = false;
    card.take_received(|received| match stack.deliver(received) {
        Ok(_) => delivered = true,
        Err(error) => {
            failure.get_or_insert(error);
        }
    })?;
    if let Some(error) = failure {
        return Err(format!("delivering to the stack: {error}"));
    }
    if sent || delivered {
        stack.kick();
    }
    Ok(())
}
