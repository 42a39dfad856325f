//! Session interfaces: what components say to their parent and to each
//! other's services, and the client stubs that say it.
//!
//! Every request travels as one IPC message: the label names the interface
//! ([`Interface`]), the payload holds the request enum encoded with postcard,
//! and capabilities (a session, a dataspace, a notification) ride in the
//! message's capability slots. Every reply is a postcard-encoded value of the
//! interface's reply type.
//!
//! A server never trusts a request: [`decode`] refuses garbage with
//! [`SessionError::BadRequest`], and every size or range in a request is
//! checked before use by the server that receives it.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod block;
pub mod block_service;
pub mod bulk;
pub mod client;
pub mod env;
pub mod file_system;
pub mod framebuffer;
pub mod fs_service;
pub mod gui;
pub mod init_state;
pub mod input;
pub mod log_stream;
pub mod parent;
pub mod platform;
pub mod server;
pub mod services;
pub mod socket;
pub mod table;
pub mod uplink;

use serde::{Deserialize, Serialize};

/// The interface a message belongs to, carried in the message label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Interface {
    /// Child to parent: sessions, announcements, exit ([`parent::ParentRequest`]).
    Parent = 1,
    /// A session's own requests ([`services`]).
    Session = 3,
}

impl Interface {
    /// The interface a label names.
    pub fn from_label(label: u32) -> Option<Self> {
        match label {
            1 => Some(Self::Parent),
            3 => Some(Self::Session),
            _ => None,
        }
    }
}

/// Why a session could not be had, or a request not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionError {
    /// No route leads to a provider (or a route says Deny).
    Denied,
    /// The donated quota does not cover the session; upgrade by at least `needed` bytes.
    InsufficientQuota {
        /// Bytes missing.
        needed: u64,
    },
    /// The client has too little quota to donate what it asked to.
    ClientQuotaExceeded,
    /// The provider exists but has not announced the service (yet), or has died.
    Unavailable,
    /// The request did not decode, or names something out of range.
    BadRequest,
    /// The resource (a port range, an IRQ line, device memory) belongs to another session.
    AlreadyClaimed,
    /// The session is unknown (closed, or its server restarted).
    NoSuchSession,
    /// The donated capability quota does not cover the session; donate at
    /// least `needed` more.
    InsufficientCaps {
        /// Capabilities missing.
        needed: u64,
    },
    /// The server did not answer within [`parent::DEADLINE_MS`].
    NotAnswered,
    /// The kernel refused an operation on the server's side, and why.
    Kernel(#[serde(with = "kernel_code")] arbor_abi::Error),
}

/// The one conversion from a kernel error: `?` on a system call's result
/// in any function that returns a [`SessionError`].
impl From<arbor_abi::Error> for SessionError {
    fn from(error: arbor_abi::Error) -> Self {
        SessionError::Kernel(error)
    }
}

/// A kernel error travels as its number (the ABI's `rax` code); a number
/// that names no error does not decode, so a forged reply is `BadRequest`
/// at [`decode`], never a made-up kernel error.
mod kernel_code {
    use arbor_abi::Error;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        error: &Error,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(*error as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Error, D::Error> {
        let code = u64::deserialize(deserializer)?;
        Error::ALL
            .iter()
            .copied()
            .find(|error| *error as u64 == code)
            .ok_or_else(|| D::Error::custom("not a kernel error code"))
    }
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Denied => write!(f, "denied: no route to a provider"),
            Self::InsufficientQuota { needed } => {
                write!(f, "insufficient quota: {needed} more bytes needed")
            }
            Self::ClientQuotaExceeded => write!(f, "the client cannot donate that much quota"),
            Self::Unavailable => write!(f, "service unavailable"),
            Self::BadRequest => write!(f, "bad request"),
            Self::AlreadyClaimed => write!(f, "resource already claimed"),
            Self::NoSuchSession => write!(f, "no such session"),
            Self::InsufficientCaps { needed } => {
                write!(f, "insufficient capability quota: {needed} more needed")
            }
            Self::NotAnswered => write!(
                f,
                "the server did not answer within {} ms",
                parent::DEADLINE_MS
            ),
            Self::Kernel(error) => write!(f, "kernel error: {error}"),
        }
    }
}

/// Encodes `value` into `buffer`; the encoded length, or `BadRequest` if it does not fit.
pub fn encode<T: Serialize>(value: &T, buffer: &mut [u8]) -> Result<usize, SessionError> {
    postcard::to_slice(value, buffer)
        .map(|used| used.len())
        .map_err(|_| SessionError::BadRequest)
}

/// Decodes a value from untrusted bytes.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, SessionError> {
    postcard::from_bytes(bytes).map_err(|_| SessionError::BadRequest)
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
