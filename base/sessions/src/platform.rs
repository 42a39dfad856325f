//! The Platform session: a device driver's view of the PCI bus, served by
//! the platform driver (`components/drivers/platform`).
//!
//! A client sees a *virtual bus*: the devices its policy names, numbered
//! from 0 in the order the platform driver found them. Every request names
//! one of them by that index; anything else is refused (`BadRequest`) and
//! the platform driver logs why. Through the session a driver reads its
//! devices' configuration space, sets their command register (decoding,
//! bus mastering), maps their BARs, receives their interrupt and allocates
//! DMA memory, which is paid from the session's quota.
//!
//! The platform driver never trusts a client's index, offset, size or
//! capability; a driver never trusts the platform driver's sizes either
//! (it maps only what the kernel says a dataspace holds).

use crate::client::{self, Session};
use crate::{Interface, SessionError};
use arbor::abi::{CapSlot, info};
use arbor::{slots, sys};
use serde::{Deserialize, Serialize};

/// The service name.
pub const PLATFORM: &str = "Platform";

/// RAM a Platform session costs the client before any DMA memory: the
/// platform driver's bookkeeping and what core charges it for each BAR
/// and interrupt line it opens on the client's behalf.
pub const SESSION_RAM: u64 = 64 * 1024;

/// Capability quota a Platform session donates: the platform driver's slots
/// for what it holds on the client's behalf (a BAR: core's session, its
/// donation on the way and the copy given; an interrupt or a DMA buffer:
/// the object and the copy given).
pub const SESSION_CAPS: u64 = 32;

/// The command register's bits a client may set (PCI 3.0, 6.2.2): I/O
/// space, memory space, bus master, and INTx disable. Every other write to
/// configuration space is refused.
pub const COMMAND_WRITABLE: u16 = 0x1 | 0x2 | 0x4 | 0x400;
/// The command register's offset in configuration space.
pub const COMMAND_OFFSET: u16 = 0x04;
/// The bus-master bit of the command register.
pub const BUS_MASTER: u16 = 0x4;

/// A device's address on the PCI bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0–31.
    pub device: u8,
    /// Function number, 0–7.
    pub function: u8,
}

impl core::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// What a client learns about one of its devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Where it sits.
    pub address: PciAddress,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device_id: u16,
    /// Base class.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// The IOAPIC input its INTx reaches (0: none).
    pub irq_line: u8,
    /// Each memory BAR's size in bytes (0: not a memory BAR, or the upper
    /// half of a 64-bit one).
    pub bar_sizes: [u64; 6],
}

/// A client's requests; `device` is an index into its virtual bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlatformRequest {
    /// How many devices the client has.
    DeviceCount,
    /// One device's description.
    Device {
        /// Index on the virtual bus.
        device: u8,
    },
    /// Reads a dword of configuration space (`offset` dword-aligned, below 4096).
    ConfigRead {
        /// Index on the virtual bus.
        device: u8,
        /// Byte offset.
        offset: u16,
    },
    /// Sets the command register (only [`COMMAND_WRITABLE`] bits).
    SetCommand {
        /// Index on the virtual bus.
        device: u8,
        /// The new value.
        command: u16,
    },
    /// A device dataspace over one memory BAR (comes with the reply).
    Bar {
        /// Index on the virtual bus.
        device: u8,
        /// BAR number, 0–5.
        bar: u8,
    },
    /// The device's interrupt, signalled to the notification sent with the
    /// request; the reply carries the Irq capability to acknowledge with.
    Irq {
        /// Index on the virtual bus.
        device: u8,
    },
    /// `size` bytes of zeroed, physically contiguous DMA memory, paid from
    /// the session's quota (the dataspace comes with the reply).
    Dma {
        /// Bytes (rounded up to pages).
        size: u64,
    },
}

/// The platform driver's replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlatformReply {
    /// Devices on the virtual bus.
    Count(u8),
    /// One device.
    Device(DeviceInfo),
    /// A configuration-space dword.
    Value(u32),
    /// A BAR: physical address and size (the dataspace rides along).
    Bar {
        /// Physical address.
        phys: u64,
        /// Size in bytes.
        size: u64,
    },
    /// The interrupt's IOAPIC input (the Irq capability rides along).
    Irq {
        /// IOAPIC input.
        line: u8,
    },
    /// DMA memory: its physical address and size (the dataspace rides along).
    Dma {
        /// Physical address of the first byte.
        phys: u64,
        /// Size in bytes.
        size: u64,
    },
    /// Done.
    Done,
    /// Refused.
    Error(SessionError),
}

/// A client's Platform session.
pub struct Platform {
    session: Session,
}

impl Platform {
    /// Opens a Platform session with `ram` bytes of quota (at least
    /// [`SESSION_RAM`]; the rest is for DMA memory).
    pub fn open(label: &str, ram: u64) -> Result<Self, SessionError> {
        let session = client::open_session_with_caps(
            PLATFORM,
            label,
            &(),
            ram.max(SESSION_RAM),
            SESSION_CAPS,
            None,
        )?;
        Ok(Self { session })
    }

    /// Opens the session as a restarted driver must: while the platform
    /// driver still quiesces the devices of this label's previous
    /// incarnation it answers [`SessionError::AlreadyClaimed`], so this
    /// asks again every 10 ms, for at most half a second.
    pub fn open_after_restart(label: &str, ram: u64) -> Result<Self, SessionError> {
        let mut attempts = 0;
        loop {
            match Self::open(label, ram) {
                Err(SessionError::AlreadyClaimed) if attempts < 50 => {
                    attempts += 1;
                    client::pause(10);
                }
                done => return done,
            }
        }
    }

    fn call(
        &self,
        request: &PlatformRequest,
        send: Option<CapSlot>,
        receive: Option<CapSlot>,
    ) -> Result<(PlatformReply, bool), SessionError> {
        match client::call(self.session.cap, Interface::Session, request, send, receive)? {
            (PlatformReply::Error(error), _) => Err(error),
            answer => Ok(answer),
        }
    }

    /// Calls expecting a capability in a fresh slot.
    fn call_for_cap(
        &self,
        request: &PlatformRequest,
        send: Option<CapSlot>,
    ) -> Result<(PlatformReply, CapSlot), SessionError> {
        let slot = slots::allocate().map_err(SessionError::from)?;
        match self.call(request, send, Some(slot)) {
            Ok((reply, true)) => Ok((reply, slot)),
            Ok((_, false)) => {
                slots::free(slot);
                Err(SessionError::BadRequest)
            }
            Err(error) => {
                slots::free(slot);
                Err(error)
            }
        }
    }

    /// How many devices this session has.
    pub fn device_count(&self) -> Result<u8, SessionError> {
        match self.call(&PlatformRequest::DeviceCount, None, None)?.0 {
            PlatformReply::Count(count) => Ok(count),
            _ => Err(SessionError::BadRequest),
        }
    }

    /// Device `device`'s description.
    pub fn device(&self, device: u8) -> Result<DeviceInfo, SessionError> {
        match self
            .call(&PlatformRequest::Device { device }, None, None)?
            .0
        {
            PlatformReply::Device(info) => Ok(info),
            _ => Err(SessionError::BadRequest),
        }
    }

    /// Reads a configuration-space dword of device `device`.
    pub fn config_read(&self, device: u8, offset: u16) -> Result<u32, SessionError> {
        match self
            .call(&PlatformRequest::ConfigRead { device, offset }, None, None)?
            .0
        {
            PlatformReply::Value(value) => Ok(value),
            _ => Err(SessionError::BadRequest),
        }
    }

    /// Sets device `device`'s command register.
    pub fn set_command(&self, device: u8, command: u16) -> Result<(), SessionError> {
        self.call(&PlatformRequest::SetCommand { device, command }, None, None)
            .map(drop)
    }

    /// A dataspace over BAR `bar` of device `device`: (capability, physical address, size).
    pub fn bar(&self, device: u8, bar: u8) -> Result<(CapSlot, u64, u64), SessionError> {
        match self.call_for_cap(&PlatformRequest::Bar { device, bar }, None)? {
            (PlatformReply::Bar { phys, size }, cap) => Ok((cap, phys, size)),
            (_, cap) => {
                slots::release(cap);
                Err(SessionError::BadRequest)
            }
        }
    }

    /// Device `device`'s interrupt, signalled to `notification` (a
    /// capability with WRITE and GRANT); returns the Irq capability to
    /// acknowledge with and the line.
    pub fn irq(&self, device: u8, notification: CapSlot) -> Result<(CapSlot, u8), SessionError> {
        match self.call_for_cap(&PlatformRequest::Irq { device }, Some(notification))? {
            (PlatformReply::Irq { line }, cap) => Ok((cap, line)),
            (_, cap) => {
                slots::release(cap);
                Err(SessionError::BadRequest)
            }
        }
    }

    /// `size` bytes of DMA memory: (dataspace, physical address, size). The
    /// physical address is checked against what the kernel reports.
    pub fn dma(&self, size: u64) -> Result<(CapSlot, u64, u64), SessionError> {
        match self.call_for_cap(&PlatformRequest::Dma { size }, None)? {
            (PlatformReply::Dma { phys, size }, cap) => {
                let kernel = sys::info(info::DATASPACE_PHYS, u64::from(cap.0))
                    .map_err(SessionError::from)?;
                if kernel.0 != phys {
                    slots::release(cap);
                    return Err(SessionError::BadRequest);
                }
                Ok((cap, phys, size))
            }
            (_, cap) => {
                slots::release(cap);
                Err(SessionError::BadRequest)
            }
        }
    }
}
