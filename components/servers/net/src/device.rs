//! smoltcp's view of a Nic session: frames in and out through
//! [`NicClient`], copied (the shared memory is the peer's to rewrite, so
//! smoltcp never parses it in place).

use alloc::vec::Vec;
use arbor_sessions::nic::{MAX_FRAME_LEN, NicClient, NicClientError};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The device: the session, and the first failure seen since the last look.
pub struct NicDevice {
    nic: NicClient,
    failure: Option<NicClientError>,
    sent: bool,
}

impl NicDevice {
    /// A device over `nic`.
    pub fn new(nic: NicClient) -> NicDevice {
        NicDevice {
            nic,
            failure: None,
            sent: false,
        }
    }

    /// Swaps in a new session (after the old one broke).
    pub fn replace(&mut self, nic: NicClient) {
        self.nic = nic;
        self.failure = None;
    }

    /// The failure that broke the session, if one did.
    pub fn take_failure(&mut self) -> Option<NicClientError> {
        self.failure.take()
    }

    /// Wakes the server after frames were queued.
    pub fn flush(&mut self) {
        if core::mem::take(&mut self.sent) {
            self.nic.kick();
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
pub struct Transmit<'a>(&'a mut NicDevice);

impl phy::RxToken for Received {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Transmit<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = alloc::vec![0u8; len.min(MAX_FRAME_LEN)];
        let result = f(&mut frame);
        match self.0.nic.transmit(&frame) {
            // A full ring drops the frame, as a busy wire would; TCP retransmits.
            Ok(_) => self.0.sent = true,
            Err(error) => {
                self.0.failure.get_or_insert(error);
            }
        }
        result
    }
}

impl phy::Device for NicDevice {
    type RxToken<'a> = Received;
    type TxToken<'a> = Transmit<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Received, Transmit<'_>)> {
        if self.failure.is_some() {
            return None;
        }
        let mut buffer = alloc::vec![0u8; MAX_FRAME_LEN];
        match self.nic.receive(&mut buffer) {
            Ok(Some(length)) => {
                buffer.truncate(length);
                Some((Received(buffer), Transmit(self)))
            }
            Ok(None) => None,
            Err(error) => {
                self.failure = Some(error);
                None
            }
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<Transmit<'_>> {
        if self.failure.is_some() {
            return None;
        }
        Some(Transmit(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME_LEN - 4;
        capabilities.max_burst_size = Some(8);
        capabilities
    }
}
