//! The parent interface (child → parent) and the root interface (parent →
//! a server child).
//!
//! A parent calls a server's root synchronously, so a server opens every
//! session it needs *before* it announces (`client::announce` opens the
//! component's Log session for it): a server that asked its parent for a
//! session while the parent called its root would deadlock with it. Quota travels with requests: a parent first moves the
//! donated RAM from the child's Pd to its own, then serves the request,
//! forwards it to its own parent, or moves the RAM on to the serving child.

use crate::SessionError;
use serde::{Deserialize, Serialize};

/// What a child asks of its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentRequest<'a> {
    /// Open a session. `args` are service-specific (postcard); a capability
    /// may ride along (e.g. the notification an Irq session signals).
    Session {
        /// Service name, e.g. "Log".
        service: &'a str,
        /// The client's label for this session ("" for none).
        label: &'a str,
        /// Service-specific arguments.
        #[serde(borrow)]
        args: &'a [u8],
        /// RAM donated to the server for this session.
        ram: u64,
    },
    /// Donate more RAM to a session.
    Upgrade {
        /// The id the parent gave the session.
        session: u32,
        /// More RAM.
        ram: u64,
    },
    /// Close a session; its quota comes back.
    Close {
        /// The id the parent gave the session.
        session: u32,
    },
    /// Offer a service; the message carries the root endpoint capability.
    Announce {
        /// The service's name.
        service: &'a str,
    },
    /// The component is done.
    Exit {
        /// 0 = success.
        code: i32,
    },
}

/// The parent's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentReply {
    /// The session is open; the message carries its capability.
    Session {
        /// The id to upgrade or close it by.
        session: u32,
    },
    /// Done.
    Done,
    /// Refused.
    Error(SessionError),
}

/// What a parent asks of a server child's root endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootRequest<'a> {
    /// Create a session paid from `ram`, which has already been moved to the server's Pd.
    Create {
        /// The composed label ("init -> hello").
        label: &'a str,
        /// Service-specific arguments.
        #[serde(borrow)]
        args: &'a [u8],
        /// RAM donated for it.
        ram: u64,
    },
    /// More RAM for a session (already moved to the server's Pd).
    Upgrade {
        /// The session's badge.
        badge: u64,
        /// More RAM.
        ram: u64,
    },
    /// Close a session; the server answers with the RAM it gives back.
    Close {
        /// The session's badge.
        badge: u64,
    },
}

/// A server's answer to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootReply {
    /// Created; the message carries the session capability (an endpoint badged `badge`).
    Created {
        /// The badge session requests will carry.
        badge: u64,
    },
    /// Done; `ram` bytes of the session's quota are free to move back.
    Done {
        /// RAM the server gives back.
        ram: u64,
    },
    /// Refused.
    Error(SessionError),
}

/// The badge a server's root capability carries, so that the server tells
/// its parent's root calls from session calls.
pub const ROOT_BADGE: u64 = u64::MAX;
