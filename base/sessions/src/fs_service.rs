//! The FileSystem service for any [`Backend`]: a file-system server
//! (ram_fs, fat_fs) writes its backend and its config, and this module does
//! the rest on the server framework ([`crate::server`]).
//!
//! Per session: a packet stream paid from the donation
//! ([`ServerStream`]), the session's [`Policy`] chosen by label from the
//! server's [`PolicyRule`]s (no rule, no session), and its bounded
//! [`Handles`]. When any client signals, every session's submit ring is
//! drained: each packet is copied out of shared memory (so the client
//! cannot change it while it is checked), served, copied back and
//! acknowledged. Refusals that matter for security (read-only, a path
//! outside the root, garbage) are logged with the session's label.

use crate::bulk::ServerStream;
use crate::file_system::{
    Backend, FsError, HEADER_SIZE, Handles, MAX_HANDLES, Policy, ReadTarget, normalize, op,
    serve_into,
};
use crate::server::{Call, Service};
use crate::table::{Entry, Quota, SessionTable};
use crate::{SessionError, bulk::StreamReply, log};
use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::CapSlot;
use arbor::packet_stream::{Client, Packet, Server, Status};
use serde::Deserialize;

/// The server notification bit clients wake the server with.
pub const WAKE_BIT: u64 = 1;

/// One policy line of a file-system server's config: sessions whose label
/// is `label` (or starts with `label` followed by ` -> `) see `root` as
/// their `/`, and may write if `writable`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// The session label (as init composes it) this rule is for.
    pub label: String,
    /// The directory the session sees as `/` (default `/`).
    #[serde(default = "root_text")]
    pub root: String,
    /// Whether the session may change anything (default false).
    #[serde(default)]
    pub writable: bool,
}

fn root_text() -> String {
    String::from("/")
}

/// The policy of the first rule that matches `label`; `None` if none does
/// (or the rule's root is not a valid path).
pub fn policy_for(rules: &[PolicyRule], label: &str) -> Option<Policy> {
    let rule = rules.iter().find(|rule| {
        label == rule.label
            || label
                .strip_prefix(rule.label.as_str())
                .is_some_and(|rest| rest.starts_with(" -> "))
    })?;
    Some(Policy {
        root: normalize(rule.root.as_bytes()).ok()?,
        writable: rule.writable,
    })
}

/// One session's state.
pub struct FsSession<N> {
    stream: ServerStream,
    policy: Policy,
    handles: Handles<N>,
    /// Scratch for one packet, reused.
    scratch: Vec<u8>,
    /// Refusals logged so far (a flood is logged only at its start).
    refusals_logged: u32,
}

/// Refusals logged per session; a client sending garbage cannot flood the log.
pub const REFUSALS_LOGGED: u32 = 8;

/// The FileSystem service over `backend`.
pub struct FsService<B: Backend> {
    /// The file system.
    pub backend: B,
    rules: Vec<PolicyRule>,
    wake: CapSlot,
}

impl<B: Backend> FsService<B> {
    /// Serves `backend` under `rules`; `wake` is the capability (from
    /// [`crate::server::Server::signal_cap`] with [`WAKE_BIT`]) clients get.
    pub fn new(backend: B, rules: Vec<PolicyRule>, wake: CapSlot) -> Self {
        FsService {
            backend,
            rules,
            wake,
        }
    }

    fn drain(&mut self, label: &str, session: &mut FsSession<B::Node>) {
        let mut signal_client = false;
        loop {
            let request = match session.stream.stream.next_request() {
                Ok(Some((request, _))) => request,
                Ok(None) => break,
                Err(error) => {
                    log!("\"{label}\": broken stream ({error:?}); its requests are ignored");
                    break;
                }
            };
            let status = match request.payload() {
                Err(_) => {
                    log!("\"{label}\": refused a descriptor outside the payload area");
                    Status::BAD_DESCRIPTOR
                }
                Ok(packet) => {
                    let length = packet.length();
                    // Reused without clearing: what is left in it is this
                    // session's own earlier bytes, and every byte sent back
                    // is either copied in or written by the backend first.
                    let grow = length.saturating_sub(session.scratch.len());
                    if session.scratch.try_reserve(grow).is_err() {
                        FsError::NoSpace.status()
                    } else {
                        session.scratch.resize(length, 0);
                        let stream = &session.stream.stream;
                        // A read's request is its header; the rest of the
                        // packet is room for the answer, neither copied in
                        // nor (beyond the bytes read) copied back.
                        let is_read = request.opcode() == op::READ;
                        let incoming = if is_read {
                            length.min(HEADER_SIZE)
                        } else {
                            length
                        };
                        if stream
                            .read(packet, 0, &mut session.scratch[..incoming])
                            .is_err()
                        {
                            FsError::BadRequest.status()
                        } else {
                            // A read's data goes into the packet as the
                            // backend gets it (after the header).
                            let mut target = PacketTarget { stream, packet };
                            let status = serve_into(
                                &mut self.backend,
                                &session.policy,
                                &mut session.handles,
                                request.opcode(),
                                &mut session.scratch,
                                is_read.then_some(&mut target),
                            );
                            // The answer is in the header and (for readdir)
                            // after it; a read's data is in place already.
                            let outgoing = match (is_read, status) {
                                (true, Status::OK) => HEADER_SIZE.min(length),
                                (true, _) => 0,
                                (false, _) => length,
                            };
                            let _ = stream.write(packet, 0, &session.scratch[..outgoing]);
                            status
                        }
                    }
                }
            };
            if let Some(error @ (FsError::ReadOnly | FsError::BadPath | FsError::BadRequest)) =
                FsError::from_status(status)
            {
                session.refusals_logged = session.refusals_logged.saturating_add(1);
                if session.refusals_logged <= REFUSALS_LOGGED {
                    log!(
                        "\"{label}\": refused opcode {}: {error}",
                        request.opcode().0
                    );
                }
                if session.refusals_logged == REFUSALS_LOGGED {
                    log!("\"{label}\": further refusals are not logged");
                }
            }
            if session.stream.stream.acknowledge(request, status).is_err() {
                log!("\"{label}\": broken ack ring; its requests are ignored");
                break;
            }
            signal_client = true;
        }
        if signal_client {
            session.stream.signal_client();
        }
    }
}

/// A read's data area in the client's packet: bytes from [`HEADER_SIZE`]
/// on (the packet's length bounds them; the read's count was checked
/// against it).
struct PacketTarget<'a> {
    stream: &'a Server,
    packet: &'a Packet,
}

impl ReadTarget for PacketTarget<'_> {
    fn put(&mut self, at: usize, bytes: &[u8]) -> Result<(), FsError> {
        let at = at.checked_add(HEADER_SIZE).ok_or(FsError::Io)?;
        self.stream
            .write(self.packet, at, bytes)
            .map_err(|_| FsError::Io)
    }

    fn put_from(
        &mut self,
        at: usize,
        from: &Client,
        packet: &Packet,
        from_at: usize,
        len: usize,
    ) -> Result<(), FsError> {
        let at = at.checked_add(HEADER_SIZE).ok_or(FsError::Io)?;
        from.copy_to(packet, from_at, self.stream, self.packet, at, len)
            .map_err(|_| FsError::Io)
    }
}

impl<B: Backend> Service for FsService<B> {
    type Session = FsSession<B::Node>;
    type Reply = StreamReply;

    fn create(
        &mut self,
        _service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<Self::Session, SessionError> {
        let Some(policy) = policy_for(&self.rules, label) else {
            log!("no policy for \"{label}\": session denied");
            return Err(SessionError::Denied);
        };
        let stream = ServerStream::create(args, quota)?;
        Ok(FsSession {
            stream,
            policy,
            handles: Handles::new(MAX_HANDLES),
            scratch: Vec::new(),
            refusals_logged: 0,
        })
    }

    fn opened(&mut self, session: &Entry<Self::Session>) {
        log!(
            "session {} for \"{}\": root {}, {}",
            session.badge,
            session.label,
            session.state.policy.root.as_str(),
            if session.state.policy.writable {
                "writable"
            } else {
                "read-only"
            }
        );
    }

    fn handle(&mut self, session: &mut Entry<Self::Session>, call: &mut Call<'_>) -> StreamReply {
        session.state.stream.setup(call, self.wake)
    }

    fn error(error: SessionError) -> StreamReply {
        StreamReply::Error(error)
    }

    fn close(&mut self, session: Entry<Self::Session>) {
        let Entry {
            badge,
            label,
            state,
            ..
        } = session;
        let FsSession {
            stream,
            mut handles,
            ..
        } = state;
        for node in handles.drain() {
            self.backend.close(node);
        }
        stream.destroy();
        // A client gone is an orderly point: what it wrote becomes durable
        // even if it never asked for a sync.
        match self.backend.sync() {
            Ok(()) => log!("session {badge} (\"{label}\") closed, synced"),
            Err(error) => log!("session {badge} (\"{label}\") closed, sync failed: {error}"),
        }
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Self::Session>) {
        if bits & WAKE_BIT == 0 {
            return;
        }
        for entry in sessions.iter_mut() {
            self.drain(&entry.label, &mut entry.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn rule(label: &str, root: &str, writable: bool) -> PolicyRule {
        PolicyRule {
            label: String::from(label),
            root: String::from(root),
            writable,
        }
    }

    #[test]
    fn policies_match_whole_label_elements() {
        let rules = vec![
            rule("init -> logger", "/logs", false),
            rule("init -> files", "/", true),
        ];
        let logger = policy_for(&rules, "init -> logger").unwrap();
        assert_eq!((logger.root.as_str(), logger.writable), ("/logs", false));
        assert!(policy_for(&rules, "init -> logger -> part").is_some());
        // A label that merely starts with the same characters is no match.
        assert_eq!(policy_for(&rules, "init -> loggerx"), None);
        assert_eq!(policy_for(&rules, "init -> other"), None);
        assert_eq!(policy_for(&[rule("a", "relative", true)], "a"), None);
        assert_eq!(policy_for(&[rule("a", "/../up", true)], "a"), None);
    }
}
