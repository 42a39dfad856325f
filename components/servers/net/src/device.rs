//! smoltcp's view of the Uplink session a NIC driver opened here: frames
//! in and out through [`UplinkPort`], copied (the shared memory is the
//! driver's to rewrite too, so smoltcp never parses it in place).
//!
//! Without a session (no driver yet, or it died) the device has no link:
//! smoltcp receives nothing and is offered no room to send, so TCP keeps
//! its data and retransmits once a driver is back.

use alloc::vec::Vec;
use arbor_sessions::log;
use arbor_sessions::uplink::{MAX_FRAME_LEN, UplinkPort};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The device: the driver's session, if one is open.
#[derive(Default)]
pub struct UplinkDevice {
    port: Option<UplinkPort>,
    /// The session's ring broke: it carries nothing until it closes.
    broken: bool,
    /// Frames from the driver refused (bad length, opcode or descriptor).
    refused: u64,
}

impl UplinkDevice {
    /// Whether a driver's session is open.
    pub fn attached(&self) -> bool {
        self.port.is_some()
    }

    /// Takes a new driver session.
    pub fn attach(&mut self, port: UplinkPort) {
        self.port = Some(port);
        self.broken = false;
    }

    /// The driver's session closed: its streams are released here.
    pub fn detach(&mut self) {
        if let Some(port) = self.port.take() {
            port.release();
        }
    }

    /// The open session.
    pub fn port_mut(&mut self) -> Option<&mut UplinkPort> {
        self.port.as_mut()
    }

    /// Frames refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The open, working session with its link up.
    fn live(&mut self) -> Option<&mut UplinkPort> {
        if self.broken {
            return None;
        }
        self.port.as_mut().filter(|port| port.link_up)
    }

    fn cut_off(&mut self, error: arbor::packet_stream::Error) {
        log!("Uplink ring unusable ({error:?}); session cut off until it closes");
        self.broken = true;
    }

    /// Wakes the driver after frames moved.
    pub fn flush(&mut self) {
        if let Some(port) = self.port.as_mut() {
            port.wake_driver();
        }
    }

    /// Checksums are computed and checked in software (the wire may corrupt).
    pub fn checksums(&self) -> ChecksumCapabilities {
        ChecksumCapabilities::default()
    }
}

/// A received frame, copied out of the shared memory.
pub struct Received(Vec<u8>);

/// Room to send one frame.
pub struct Transmit<'a>(&'a mut UplinkDevice);

impl phy::RxToken for Received {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Transmit<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = alloc::vec![0u8; len.min(MAX_FRAME_LEN)];
        let result = f(&mut frame);
        if let Some(port) = self.0.live() {
            // A token that came with a received frame (an ARP or TCP
            // answer) was offered without looking for buffers: look now.
            // Without one the frame is lost, as on a busy wire.
            if let Err(error) = port.take_buffers().and_then(|()| port.send(&frame)) {
                self.0.cut_off(error);
            }
        }
        result
    }
}

impl phy::Device for UplinkDevice {
    type RxToken<'a> = Received;
    type TxToken<'a> = Transmit<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Received, Transmit<'_>)> {
        let mut buffer = alloc::vec![0u8; MAX_FRAME_LEN];
        loop {
            let port = self.live()?;
            match port.take_frame(&mut buffer) {
                Ok(Some(Ok(length))) => {
                    buffer.truncate(length);
                    return Some((Received(buffer), Transmit(self)));
                }
                Ok(Some(Err(error))) => {
                    self.refused += 1;
                    if self.refused <= 8 {
                        log!("frame from the driver refused: {error}");
                    }
                }
                Ok(None) => return None,
                Err(error) => {
                    self.cut_off(error);
                    return None;
                }
            }
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<Transmit<'_>> {
        let port = self.live()?;
        match port.take_buffers() {
            Ok(()) if port.can_send() => Some(Transmit(self)),
            Ok(()) => None,
            Err(error) => {
                self.cut_off(error);
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME_LEN - 4;
        capabilities.max_burst_size = Some(8);
        capabilities
    }
}
