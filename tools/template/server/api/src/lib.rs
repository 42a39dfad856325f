//! The {{Name}} interface: the one crate that both the server ({{name}})
//! and its clients depend on, so that they agree on every message.
//!
//! A {{Name}} session is a private counter: a client adds to it and learns
//! the total. Each request is one IPC call whose payload is a postcard-
//! encoded [`Request`]; the answer is a [`Reply`].
#![no_std]
#![forbid(unsafe_code)]

use arbor_sessions::client::{Session, call, close_session, open_session};
use arbor_sessions::{Interface, SessionError};
use serde::{Deserialize, Serialize};

/// The service name, as scenarios route it and the server announces it.
pub const SERVICE: &str = "{{Name}}";

/// RAM a client donates for a session: it pays for the server's record of
/// the session, so no client can exhaust the server.
pub const SESSION_RAM: u64 = 4096;

/// What a client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Add `amount` to this session's counter.
    Add {
        /// How much.
        amount: u64,
    },
    /// Tell this session's counter.
    Total,
}

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The counter after the request.
    Total {
        /// Its value.
        value: u64,
    },
    /// Refused.
    Error(SessionError),
}

/// A client's open {{Name}} session.
pub struct Connection {
    session: Session,
}

impl Connection {
    /// Asks the parent for a session labelled `label`, donating [`SESSION_RAM`].
    pub fn open(label: &str) -> Result<Self, SessionError> {
        open_session(SERVICE, label, &(), SESSION_RAM, None).map(|session| Connection { session })
    }

    /// Adds `amount` to the counter; the new total.
    pub fn add(&self, amount: u64) -> Result<u64, SessionError> {
        self.request(Request::Add { amount })
    }

    /// The counter's value.
    pub fn total(&self) -> Result<u64, SessionError> {
        self.request(Request::Total)
    }

    /// Closes the session; the server gives its quota back.
    pub fn close(self) -> Result<(), SessionError> {
        close_session(self.session)
    }

    fn request(&self, request: Request) -> Result<u64, SessionError> {
        match call(self.session.cap, Interface::Session, &request, None, None)? {
            (Reply::Total { value }, _) => Ok(value),
            (Reply::Error(error), _) => Err(error),
        }
    }
}
