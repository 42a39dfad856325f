//! The Echo session: the client sends text, the server answers with the
//! same text. Requests and replies travel postcard-encoded like every other
//! session interface (see `arbor_sessions`).

use alloc::string::String;
use arbor_sessions::client::{self, Session};
use arbor_sessions::{Interface, SessionError};
use serde::{Deserialize, Serialize};

/// The service name echo_server announces unless its config names another.
pub const ECHO: &str = "Echo";

/// What a client asks of an Echo session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EchoRequest<'a> {
    /// Send `text` back.
    Echo {
        /// The text.
        text: &'a str,
    },
}

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EchoReply {
    /// The text that came in.
    Echoed {
        /// The same text.
        text: String,
    },
    /// Refused.
    Error(SessionError),
}

/// An open Echo (or same-protocol) session.
pub struct Echo {
    session: Session,
}

impl Echo {
    /// Opens a session of `service` labelled `label`, donating `ram` bytes.
    pub fn open(service: &str, label: &str, ram: u64) -> Result<Self, SessionError> {
        client::open_session(service, label, &(), ram, None).map(|session| Echo { session })
    }

    /// Sends `text` and returns what came back.
    pub fn echo(&self, text: &str) -> Result<String, SessionError> {
        match client::call::<_, EchoReply>(
            self.session.cap,
            Interface::Session,
            &EchoRequest::Echo { text },
            None,
            None,
        )? {
            (EchoReply::Echoed { text }, _) => Ok(text),
            (EchoReply::Error(error), _) => Err(error),
        }
    }

    /// Donates `ram` more bytes to the session.
    pub fn upgrade(&self, ram: u64) -> Result<(), SessionError> {
        client::upgrade_session(&self.session, ram)
    }

    /// Closes the session; its quota returns to this component.
    pub fn close(self) -> Result<(), SessionError> {
        client::close_session(self.session)
    }
}
