//! The parent interface: what a child asks of its parent, the client side
//! of opening a session as well as the server side of providing one.
//!
//! A parent never calls a child. Genode's asynchronous parent protocol,
//! adapted:
//! - A client asks for a session with [`ParentRequest::Session`], donating
//!   RAM and capability quota. When the parent (or its parent) can create
//!   it at once the reply is [`ParentReply::Session`] with the capability.
//!   When a child server must create it the parent queues a work item for
//!   that server, signals it, and replies [`ParentReply::Pending`]; the
//!   client polls [`ParentRequest::SessionStatus`] until the session or an
//!   error comes back ([`crate::client::open_session`] hides this).
//! - A server announces a service with [`ParentRequest::Announce`], which
//!   carries a *signal capability*: a badged capability to the notification
//!   bound to the server's thread. The parent signals it when work waits.
//!   Holding it costs the announcing child one capability of its own quota.
//! - The server fetches work with [`ParentRequest::NextRequest`] (answered
//!   at once with a [`Work`] item or [`ParentReply::NoWork`]); the donated
//!   quota of a create or upgrade moves to the server's Pd as the item is
//!   handed out. It answers with [`ParentRequest::Deliver`], carrying the
//!   badged session capability when it created one. A delivery for an id
//!   that is not this server's outstanding item is refused.
//! - A server that does not deliver within [`DEADLINE_MS`] is reported by
//!   its parent, the client's request fails with
//!   [`SessionError::NotAnswered`], and the parent serves everyone else.
//!
//! Closing is answered at once; the parent queues the close for the server
//! and returns the quota to the client when the server acknowledges it.

use crate::SessionError;
use serde::{Deserialize, Serialize};

/// How long a server may take to deliver a work item it was signalled for,
/// in milliseconds. Generous, so that a slow TCG run with a busy server
/// never trips it; a server that does not answer at all is reported after it.
pub const DEADLINE_MS: u64 = 2000;

/// Capability quota the parent keeps of every session's donation: the one
/// slot that holds the session capability it passes to the client. The
/// rest of the donation moves on to the server.
pub const PARENT_SESSION_CAPS: u64 = 1;

/// What a session request names and donates, read the same way by every
/// parent (in a child's [`ParentRequest::Session`]) and every server (in
/// the [`Work::Create`] it fetches). On the wire it is the fields in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCall<'a> {
    /// Service name, e.g. "Log".
    pub service: &'a str,
    /// The client's label for this session ("" for none).
    pub label: &'a str,
    /// Service-specific arguments.
    #[serde(borrow)]
    pub args: &'a [u8],
    /// RAM donated to the server for this session.
    pub ram: u64,
    /// Capability quota donated: at least [`PARENT_SESSION_CAPS`] for
    /// every parent on the way, the rest goes to the server.
    pub caps: u64,
}

impl SessionCall<'_> {
    /// The donation.
    pub fn quota(&self) -> crate::table::Quota {
        crate::table::Quota {
            ram: self.ram,
            caps: self.caps,
        }
    }
}

/// What a child asks of its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentRequest<'a> {
    /// Open a session. `args` are service-specific (postcard); a capability
    /// may ride along (e.g. the notification an Irq session signals).
    Session(#[serde(borrow)] SessionCall<'a>),
    /// How is the pending session `session`? Answered with the session,
    /// [`ParentReply::Pending`] or the error it ended in.
    SessionStatus {
        /// The id [`ParentReply::Pending`] named.
        session: u32,
    },
    /// Donate more quota to a session.
    Upgrade {
        /// The id the parent gave the session.
        session: u32,
        /// More RAM.
        ram: u64,
        /// More capability quota.
        caps: u64,
    },
    /// Close a session; its quota comes back once its server has let it go.
    Close {
        /// The id the parent gave the session.
        session: u32,
    },
    /// Offer a service; the message carries the signal capability the
    /// parent signals when work for this server is waiting.
    Announce {
        /// The service's name.
        service: &'a str,
    },
    /// A server fetches its oldest waiting work item.
    NextRequest,
    /// A server's answer to work item `id`; a [`Delivery::Created`] carries
    /// the session capability.
    Deliver {
        /// The work item's id.
        id: u32,
        /// What came of it.
        result: Delivery,
    },
    /// The component is done.
    Exit {
        /// 0 = success.
        code: i32,
    },
}

/// A server's answer to a work item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// The session exists; the message carries its capability (an endpoint
    /// capability badged `badge`).
    Created {
        /// The badge the session's calls carry; upgrades and the close name it.
        badge: u64,
    },
    /// The upgrade or close is done (after a close, all of the session's
    /// quota is free to move back).
    Done,
    /// Refused; the donated quota goes back.
    Refused(SessionError),
}

/// Work the parent hands a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work<'a> {
    /// Create a session; `ram` and `caps` are already in the server's Pd.
    Create {
        /// The item's id, for [`ParentRequest::Deliver`].
        id: u32,
        /// The session asked for (its label composed, "init -> hello").
        #[serde(borrow)]
        call: SessionCall<'a>,
    },
    /// More quota for a session (already in the server's Pd).
    Upgrade {
        /// The item's id.
        id: u32,
        /// The session's badge.
        badge: u64,
        /// More RAM.
        ram: u64,
        /// More capability quota.
        caps: u64,
    },
    /// Close a session; after the delivery, the parent takes back all the
    /// quota donated for it.
    Close {
        /// The item's id.
        id: u32,
        /// The session's badge.
        badge: u64,
    },
}

impl Work<'_> {
    /// The item's id.
    pub fn id(&self) -> u32 {
        match self {
            Work::Create { id, .. } | Work::Upgrade { id, .. } | Work::Close { id, .. } => *id,
        }
    }
}

/// The parent's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentReply<'a> {
    /// The session is open; the message carries its capability.
    Session {
        /// The id to upgrade or close it by.
        session: u32,
    },
    /// A server is creating the session; ask again with
    /// [`ParentRequest::SessionStatus`].
    Pending {
        /// The id to ask by.
        session: u32,
    },
    /// Done.
    Done,
    /// The oldest work item for the asking server.
    #[serde(borrow)]
    Work(Work<'a>),
    /// No work is waiting for the asking server.
    NoWork,
    /// Refused.
    Error(SessionError),
}
