//! One client's sockets: handles, kinds, ports, and the quota they cost.
//!
//! Each session has one [`ClientSockets`]. It hands out handles (counting
//! up, never reused, so a stale handle finds nothing), refuses what the
//! client's [`ClientPolicy`] does not allow, and charges every socket's
//! buffers against the RAM the client donated: a socket the donation does
//! not cover is refused with `InsufficientQuota`, and closing one gives its
//! share back. `H` is the stack's own name for the socket (smoltcp's handle
//! on the target, a number in tests).

use crate::policy::ClientPolicy;
use alloc::collections::BTreeMap;
use arbor_sessions::SessionError;
use arbor_sessions::socket::{SocketError, SocketHandle};

/// What a socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A TCP listener on a port.
    Listener {
        /// The port.
        port: u16,
    },
    /// A TCP connection (accepted or connected).
    Stream,
    /// A UDP socket on a port.
    Datagram {
        /// The port.
        port: u16,
    },
}

/// One socket of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket<H> {
    /// What it is.
    pub kind: Kind,
    /// The stack's handle.
    pub stack: H,
    /// RAM charged for it.
    pub cost: u64,
}

/// One client's sockets.
#[derive(Debug)]
pub struct ClientSockets<H> {
    policy: ClientPolicy,
    /// RAM the client donated for sockets (the session's RAM less the
    /// session's own cost).
    budget: u64,
    charged: u64,
    next_handle: u32,
    sockets: BTreeMap<SocketHandle, Socket<H>>,
}

impl<H: Copy> ClientSockets<H> {
    /// An empty table under `policy`, with `budget` bytes to spend on sockets.
    pub fn new(policy: ClientPolicy, budget: u64) -> Self {
        ClientSockets {
            policy,
            budget,
            charged: 0,
            next_handle: 1,
            sockets: BTreeMap::new(),
        }
    }

    /// The policy the client is under.
    pub fn policy(&self) -> &ClientPolicy {
        &self.policy
    }

    /// More budget (the client upgraded its session).
    pub fn add_budget(&mut self, ram: u64) {
        self.budget = self.budget.saturating_add(ram);
    }

    /// Sets the budget (after an upgrade, from the session's whole donation).
    pub fn set_budget(&mut self, ram: u64) {
        self.budget = ram;
    }

    /// Points `handle` at another stack socket (a listener whose socket
    /// became an accepted connection listens on a fresh one).
    pub fn set_stack(&mut self, handle: SocketHandle, stack: H) -> Result<(), SocketError> {
        let socket = self
            .sockets
            .get_mut(&handle)
            .ok_or(SocketError::NoSuchSocket(handle))?;
        socket.stack = stack;
        Ok(())
    }

    /// Bytes charged for open sockets.
    pub fn charged(&self) -> u64 {
        self.charged
    }

    /// Sockets open.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Checks that one more socket of `kind` costing `cost` is allowed, before
    /// the stack makes it: policy for the port, the count, then the quota.
    pub fn admit(&self, kind: Kind, cost: u64) -> Result<(), SocketError> {
        let needs_policy = match kind {
            Kind::Listener { port } => Some(port),
            // An ephemeral UDP port is what a connect's local port is: no
            // service anyone else could expect there.
            Kind::Datagram { port } if port < arbor_sessions::socket::EPHEMERAL_FIRST => Some(port),
            _ => None,
        };
        if let Some(port) = needs_policy
            && !self.policy.may_listen(port)
        {
            return Err(SocketError::PortNotAllowed { port });
        }
        let limit = self.policy.max_sockets;
        if self.sockets.len() >= limit as usize {
            return Err(SocketError::TooManySockets { limit });
        }
        let after = self.charged.saturating_add(cost);
        if after > self.budget {
            return Err(SocketError::Session(SessionError::InsufficientQuota {
                needed: after - self.budget,
            }));
        }
        Ok(())
    }

    /// Records a socket the stack made after [`ClientSockets::admit`] said yes;
    /// its handle. Refuses (and records nothing) if admission no longer holds.
    pub fn insert(&mut self, kind: Kind, stack: H, cost: u64) -> Result<SocketHandle, SocketError> {
        self.admit(kind, cost)?;
        let handle = SocketHandle(self.next_handle);
        // Handles count up; after 2^32 sockets in one session, refuse
        // rather than reuse.
        self.next_handle = self
            .next_handle
            .checked_add(1)
            .ok_or(SocketError::TooManySockets {
                limit: self.policy.max_sockets,
            })?;
        self.sockets.insert(handle, Socket { kind, stack, cost });
        self.charged += cost;
        Ok(handle)
    }

    /// The socket with `handle`.
    pub fn get(&self, handle: SocketHandle) -> Result<Socket<H>, SocketError> {
        self.sockets
            .get(&handle)
            .copied()
            .ok_or(SocketError::NoSuchSocket(handle))
    }

    /// Removes the socket with `handle`, giving its charge back.
    pub fn remove(&mut self, handle: SocketHandle) -> Result<Socket<H>, SocketError> {
        let socket = self
            .sockets
            .remove(&handle)
            .ok_or(SocketError::NoSuchSocket(handle))?;
        self.charged -= socket.cost;
        Ok(socket)
    }

    /// Every socket (for polling and for closing the session).
    pub fn iter(&self) -> impl Iterator<Item = (SocketHandle, Socket<H>)> + '_ {
        self.sockets
            .iter()
            .map(|(&handle, &socket)| (handle, socket))
    }

    /// Removes every socket (the session closes); their stack handles.
    pub fn drain(&mut self) -> impl Iterator<Item = H> + '_ {
        self.charged = 0;
        core::mem::take(&mut self.sockets)
            .into_values()
            .map(|socket| socket.stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn policy(max_sockets: u32) -> ClientPolicy {
        ClientPolicy {
            label: "web".to_string(),
            listen: alloc::vec![(80, 80)],
            max_sockets,
        }
    }

    #[test]
    fn policy_refuses_ports_and_counts() {
        let mut table = ClientSockets::<u32>::new(policy(2), 1 << 20);
        assert_eq!(
            table.insert(Kind::Listener { port: 81 }, 0, 100),
            Err(SocketError::PortNotAllowed { port: 81 })
        );
        assert_eq!(
            table.insert(Kind::Datagram { port: 53 }, 0, 100),
            Err(SocketError::PortNotAllowed { port: 53 })
        );
        assert_eq!(
            table.insert(Kind::Datagram { port: 49151 }, 0, 100),
            Err(SocketError::PortNotAllowed { port: 49151 })
        );
        // An ephemeral UDP port needs no entry, but counts as a socket.
        let ephemeral = table
            .insert(Kind::Datagram { port: 49152 }, 9, 100)
            .unwrap();
        assert_eq!(table.remove(ephemeral).unwrap().stack, 9);
        let listener = table.insert(Kind::Listener { port: 80 }, 1, 100).unwrap();
        table.insert(Kind::Stream, 2, 100).unwrap();
        assert_eq!(
            table.insert(Kind::Stream, 3, 100),
            Err(SocketError::TooManySockets { limit: 2 })
        );
        assert_eq!(table.remove(listener).unwrap().stack, 1);
        table.insert(Kind::Stream, 3, 100).unwrap();
    }

    #[test]
    fn quota_is_charged_and_returned() {
        let mut table = ClientSockets::<u32>::new(policy(10), 250);
        let a = table.insert(Kind::Stream, 1, 100).unwrap();
        let b = table.insert(Kind::Stream, 2, 100).unwrap();
        assert_eq!(
            table.insert(Kind::Stream, 3, 100),
            Err(SocketError::Session(SessionError::InsufficientQuota {
                needed: 50
            }))
        );
        table.add_budget(50);
        let c = table.insert(Kind::Stream, 3, 100).unwrap();
        assert_eq!(table.charged(), 300);
        for handle in [a, b, c] {
            table.remove(handle).unwrap();
        }
        assert_eq!(table.charged(), 0);
        assert!(table.is_empty());
    }

    #[test]
    fn handles_are_never_reused_and_stale_ones_find_nothing() {
        let mut table = ClientSockets::<u32>::new(policy(10), 1 << 20);
        let first = table.insert(Kind::Stream, 1, 1).unwrap();
        table.remove(first).unwrap();
        let second = table.insert(Kind::Stream, 2, 1).unwrap();
        assert_ne!(first, second);
        assert_eq!(table.get(first), Err(SocketError::NoSuchSocket(first)));
        assert_eq!(
            table.remove(SocketHandle(999)),
            Err(SocketError::NoSuchSocket(SocketHandle(999)))
        );
        let drained: Vec<u32> = table.drain().collect();
        assert_eq!(drained, alloc::vec![2]);
        assert_eq!(table.charged(), 0);
    }

    #[test]
    fn an_unmatched_client_holds_nothing() {
        let table = ClientSockets::<u32>::new(crate::policy::policy_for(&[], "stranger"), 1 << 20);
        assert_eq!(
            table.admit(Kind::Stream, 1),
            Err(SocketError::TooManySockets { limit: 0 })
        );
    }
}
