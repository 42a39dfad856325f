//! {{name}}: a server. It announces the {{Name}} service to its parent and
//! then answers, in one loop, two kinds of callers:
//! - its parent (init), on the *root* capability: create, upgrade and close
//!   sessions, each paid from the RAM the client donated;
//! - its clients, each on the session capability it was given: requests of
//!   the {{Name}} interface (crate `{{name}}_api`).
//!
//! It never trusts a client: sessions are told apart by the badge the kernel
//! puts on every call, and the decisions live in `src/sessions.rs`, tested
//! on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use arbor::abi::{CapSlot, ObjectKind, Rights, slot};
use arbor::slots;
use arbor::sys::{self, Badge};
use arbor_sessions::client::{self, Endpoint, Incoming, kernel_error};
use arbor_sessions::parent::{ROOT_BADGE, RootReply, RootRequest};
use arbor_sessions::{Interface, SessionError, decode, log};
use {{name}}::sessions::Sessions;
use {{name}}_api::{Reply, Request, SERVICE};

// The runtime calls `run` once everything is set up.
arbor::entry!(run);

fn run(_argument: u64) {
    if let Err(error) = serve() {
        log!("stopped: {error}");
        client::exit(1);
    }
}

fn serve() -> Result<(), SessionError> {
    // One endpoint receives everything; the capabilities derived from it
    // differ only in their badge.
    let endpoint = slots::allocate().map_err(kernel_error)?;
    sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0).map_err(kernel_error)?;
    let root = derive_badged(endpoint, Badge(ROOT_BADGE))?;
    // Log before announcing: the first line opens the Log session, and once
    // the service is announced init may be waiting on this server's root,
    // unable to answer a request of its own.
    log!("serving {SERVICE}");
    client::announce(SERVICE, root)?;

    let mut server = Server {
        endpoint: Endpoint::new(endpoint),
        sessions: Sessions::new(),
        sent: None,
    };
    loop {
        // Sends the reply set while handling the last request, then waits.
        let incoming = server.endpoint.next(None).map_err(kernel_error)?;
        server.handle(&incoming);
    }
}

/// A capability to `endpoint` whose calls arrive with `badge`.
fn derive_badged(endpoint: CapSlot, badge: Badge) -> Result<CapSlot, SessionError> {
    let cap = slots::allocate().map_err(kernel_error)?;
    sys::derive(endpoint, cap, Rights::WRITE.union(Rights::GRANT), badge.0)
        .map_err(|error| {
            slots::free(cap);
            kernel_error(error)
        })
        .map(|()| cap)
}

struct Server {
    endpoint: Endpoint,
    sessions: Sessions,
    /// The session capability handed out with the last reply: the server
    /// keeps no copy once the reply has gone.
    sent: Option<CapSlot>,
}

impl Server {
    fn handle(&mut self, incoming: &Incoming) {
        if let Some(cap) = self.sent.take() {
            slots::release(cap);
        }
        match (incoming.interface, incoming.badge) {
            (Some(Interface::Root), Badge(ROOT_BADGE)) => self.root(incoming),
            (Some(Interface::Session), badge) if badge != Badge(ROOT_BADGE) => {
                let reply = self.session(badge, incoming);
                self.endpoint.set_reply(&reply, None);
            }
            _ => self
                .endpoint
                .set_reply(&Reply::Error(SessionError::BadRequest), None),
        }
    }

    /// The parent's requests: the session's quota has already been moved
    /// to this component when a Create or Upgrade arrives.
    fn root(&mut self, incoming: &Incoming) {
        let reply = match decode::<RootRequest<'_>>(incoming.bytes()) {
            Ok(RootRequest::Create { label, ram, .. }) => match self.create(ram) {
                Ok((badge, cap)) => {
                    log!("session {} opened for \"{label}\" ({ram} bytes donated)", badge.0);
                    self.sent = Some(cap);
                    let created = RootReply::Created { badge: badge.0 };
                    return self.endpoint.set_reply(&created, Some(cap));
                }
                Err(error) => RootReply::Error(error),
            },
            Ok(RootRequest::Upgrade { badge, ram }) => {
                match self.sessions.upgrade(Badge(badge), ram) {
                    Ok(()) => RootReply::Done { ram: 0 },
                    Err(error) => RootReply::Error(error),
                }
            }
            Ok(RootRequest::Close { badge }) => match self.sessions.close(Badge(badge)) {
                Ok(ram) => {
                    log!("session {badge} closed, {ram} bytes go back");
                    RootReply::Done { ram }
                }
                Err(error) => RootReply::Error(error),
            },
            Err(error) => RootReply::Error(error),
        };
        self.endpoint.set_reply(&reply, None);
    }

    /// A session and the capability its client calls it by.
    fn create(&mut self, ram: u64) -> Result<(Badge, CapSlot), SessionError> {
        let badge = self.sessions.create(ram)?;
        match derive_badged(self.endpoint.cap, badge) {
            Ok(cap) => Ok((badge, cap)),
            Err(error) => {
                let _ = self.sessions.close(badge);
                Err(error)
            }
        }
    }

    /// A client's request on the session `badge`.
    fn session(&mut self, badge: Badge, incoming: &Incoming) -> Reply {
        let result = match decode::<Request>(incoming.bytes()) {
            Ok(Request::Add { amount }) => self.sessions.add(badge, amount),
            Ok(Request::Total) => self.sessions.total(badge),
            Err(error) => Err(error),
        };
        match result {
            Ok(value) => Reply::Total { value },
            Err(error) => Reply::Error(error),
        }
    }
}
