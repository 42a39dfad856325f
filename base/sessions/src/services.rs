//! The requests of each session kind, and their service-specific arguments.

use crate::SessionError;
use serde::{Deserialize, Serialize};

/// Service names, as routes and announcements spell them.
pub mod name {
    /// Text output, each line prefixed with the session label.
    pub const LOG: &str = "Log";
    /// Read-only modules (binaries, configs).
    pub const ROM: &str = "Rom";
    /// Timeouts and elapsed time.
    pub const TIMER: &str = "Timer";
    /// An interrupt line.
    pub const IRQ: &str = "Irq";
    /// A range of I/O ports.
    pub const IO_PORT: &str = "IoPort";
    /// A range of device memory.
    pub const IO_MEM: &str = "IoMem";
}

/// A Log session's requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRequest<'a> {
    /// Print text; each line gets the session's label.
    Write {
        /// The text (at most one payload, less framing).
        text: &'a str,
    },
}

/// A Rom session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RomRequest {
    /// Hand out the module: the reply carries a read-only dataspace.
    Dataspace,
}

/// A Rom session's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RomReply {
    /// The message carries the dataspace; `size` bytes of it are the module.
    Dataspace {
        /// The module's size in bytes.
        size: u64,
    },
    /// Refused.
    Error(SessionError),
}

/// A Timer session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerRequest {
    /// Signal the notification that comes with this message on every timeout.
    SetNotification,
    /// Signal once, `ms` milliseconds from now (replaces any pending timeout).
    OneShot {
        /// Milliseconds.
        ms: u64,
    },
    /// Signal every `ms` milliseconds.
    Periodic {
        /// Milliseconds.
        ms: u64,
    },
    /// Milliseconds since the timer started.
    Elapsed,
}

/// A Timer session's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerReply {
    /// Done.
    Done,
    /// Milliseconds since the timer started.
    Elapsed {
        /// Milliseconds.
        ms: u64,
    },
    /// Refused.
    Error(SessionError),
}

/// Reply of sessions whose requests only succeed or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimpleReply {
    /// Done.
    Done,
    /// Refused.
    Error(SessionError),
}

/// Arguments of an Irq session: the session capability is the kernel's Irq
/// capability itself, bound to the notification that rides with the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqArgs {
    /// IOAPIC input.
    pub line: u8,
}

/// Arguments of an IoPort session: the session capability is the kernel's
/// IoPorts capability for the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoPortArgs {
    /// First port.
    pub first: u16,
    /// Number of ports.
    pub count: u16,
}

/// Arguments of an IoMem session: the session capability is a device dataspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoMemArgs {
    /// Physical address (page aligned).
    pub phys: u64,
    /// Size in bytes (page multiple).
    pub size: u64,
}
