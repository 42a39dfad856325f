//! log_tee: a Log server for the components routed to it. Every line goes
//! on to the tee's own Log session (the serial console), prefixed with the
//! writer's label, exactly once and first; then it is copied into each
//! LogStream subscriber's bounded ring (`arbor_sessions::log_stream`) and
//! the subscriber is signalled. A subscriber that never reads loses its
//! oldest lines, never slows a writer, and costs the tee a fixed amount.
//!
//! It never trusts a writer: each line of a write is prefixed separately,
//! so text cannot pose as another component's line.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use arbor::abi::{CapSlot, ObjectKind, info};
use arbor::{slots, sys};
use arbor_sessions::client;
use arbor_sessions::log_stream::{self, LineRing, LogStreamReply, LogStreamRequest};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{LogRequest, name};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, decode, log};
use serde_reply::Reply;

arbor::entry!(run);

fn run(_argument: u64) {
    let server = match Server::new() {
        Ok(server) => server,
        Err(error) => {
            log!("no server endpoint: {error}");
            return client::exit(1);
        }
    };
    let error = server.serve(
        &[name::LOG, log_stream::SERVICE],
        Tee {
            readers: Vec::new(),
        },
    );
    log!("stopped: {error}");
    client::exit(1);
}

/// Replies of both interfaces, as one type for the framework.
mod serde_reply {
    use arbor_sessions::log_stream::LogStreamReply;
    use arbor_sessions::services::SimpleReply;
    use serde::{Serialize, Serializer};

    /// A Log reply or a LogStream reply.
    pub enum Reply {
        /// For writers.
        Log(SimpleReply),
        /// For subscribers.
        Stream(LogStreamReply),
    }

    impl Serialize for Reply {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self {
                Reply::Log(reply) => reply.serialize(serializer),
                Reply::Stream(reply) => reply.serialize(serializer),
            }
        }
    }
}

/// What a session is.
enum Role {
    Writer,
    Reader,
}

/// One subscriber: its badge, ring and notification.
struct Reader {
    badge: u64,
    ring: LineRing,
    notification: Option<CapSlot>,
}

struct Tee {
    readers: Vec<Reader>,
}

impl Tee {
    fn write(&mut self, label: &str, text: &str) {
        for line in text.lines().filter(|line| !line.is_empty()) {
            log!("[{label}] {line}");
            for reader in self.readers.iter_mut() {
                reader.ring.push(label, line);
                if let Some(notification) = reader.notification {
                    let _ = sys::signal(notification);
                }
            }
        }
    }

    fn reader(&mut self, badge: u64) -> Option<&mut Reader> {
        self.readers.iter_mut().find(|reader| reader.badge == badge)
    }
}

impl Service for Tee {
    type Session = Role;
    type Reply = Reply;

    fn create(
        &mut self,
        service: &str,
        _label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Role, SessionError> {
        if service == log_stream::SERVICE {
            // The ring, and the record that holds it.
            quota.require(Quota {
                ram: log_stream::RING_BYTES as u64 * 2 + 4096,
                caps: 1,
            })?;
            self.readers
                .try_reserve(1)
                .map_err(|_| SessionError::InsufficientQuota { needed: 4096 })?;
            return Ok(Role::Reader);
        }
        quota.require(Quota { ram: 4096, caps: 0 })?;
        Ok(Role::Writer)
    }

    fn opened(&mut self, session: &Entry<Role>) {
        if let Role::Reader = session.state {
            self.readers.push(Reader {
                badge: session.badge,
                ring: LineRing::new(),
                notification: None,
            });
            log!("\"{}\" subscribed", session.label);
        }
    }

    fn close(&mut self, session: Entry<Role>) {
        if let Some(index) = self
            .readers
            .iter()
            .position(|reader| reader.badge == session.badge)
        {
            let reader = self.readers.swap_remove(index);
            if let Some(notification) = reader.notification {
                slots::release(notification);
            }
        }
    }

    fn handle(&mut self, session: &mut Entry<Role>, call: &mut Call<'_>) -> Reply {
        match session.state {
            Role::Writer => match decode::<LogRequest<'_>>(call.incoming.bytes()) {
                Ok(LogRequest::Write { text }) => {
                    self.write(&session.label, text);
                    Reply::Log(arbor_sessions::services::SimpleReply::Done)
                }
                Err(error) => Reply::Log(arbor_sessions::services::SimpleReply::Error(error)),
            },
            Role::Reader => Reply::Stream(self.stream(session.badge, call)),
        }
    }

    fn error(error: SessionError) -> Reply {
        Reply::Log(arbor_sessions::services::SimpleReply::Error(error))
    }
}

impl Tee {
    fn stream(&mut self, badge: u64, call: &mut Call<'_>) -> LogStreamReply {
        let request = match call.request::<LogStreamRequest>() {
            Ok(request) => request,
            Err(error) => return LogStreamReply::Error(error),
        };
        match request {
            LogStreamRequest::Next => match self.reader(badge) {
                Some(reader) => {
                    let (text, dropped) = reader.ring.take();
                    LogStreamReply::Lines { text, dropped }
                }
                None => LogStreamReply::Error(SessionError::NoSuchSession),
            },
            LogStreamRequest::SetNotification => {
                let cap = match call.take_cap() {
                    Ok(Some(cap)) => cap,
                    Ok(None) => return LogStreamReply::Error(SessionError::BadRequest),
                    Err(error) => return LogStreamReply::Error(error),
                };
                let is_notification = sys::info(info::CAP_KIND, u64::from(cap.0))
                    .is_ok_and(|(kind, _)| kind == ObjectKind::Notification as u64);
                match self.reader(badge) {
                    Some(reader) if is_notification => {
                        if let Some(old) = reader.notification.replace(cap) {
                            slots::release(old);
                        }
                        LogStreamReply::Done
                    }
                    _ => {
                        slots::release(cap);
                        LogStreamReply::Error(SessionError::BadRequest)
                    }
                }
            }
        }
    }
}
