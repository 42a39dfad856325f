//! Speaking the interfaces over IPC: a client's call, and a server's
//! receive/reply loop. Both copy the payload out of the IPC buffer before
//! decoding, so nothing borrows the buffer across a system call.

use crate::parent::{Delivery, ParentReply, ParentRequest, SessionCall, Work};
use crate::services::{LogRequest, RomReply, RomRequest, SimpleReply, TimerReply, TimerRequest};
use crate::{Interface, SessionError, decode, encode};
use arbor::abi::{CapSlot, MsgInfo, PAYLOAD_MAX, slot};
use arbor::sync::TryLock;
use arbor::sys::{self, Badge, Message};
use arbor::{ipc, slots};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Calls `endpoint` on `interface` with `request`, sending `send_cap` along and
/// accepting one capability into `receive`; returns the decoded reply and
/// whether a capability arrived.
pub fn call<Request: Serialize, Reply: DeserializeOwned>(
    endpoint: CapSlot,
    interface: Interface,
    request: &Request,
    send_cap: Option<CapSlot>,
    receive: Option<CapSlot>,
) -> Result<(Reply, bool), SessionError> {
    let mut buffer = [0u8; PAYLOAD_MAX];
    call_in(endpoint, interface, request, send_cap, receive, &mut buffer)
}

/// Calls `endpoint` like [`call`], decoding a reply that borrows from
/// `buffer` (the parent's [`ParentReply`] may carry a work item's label).
pub fn call_in<'b, Request: Serialize, Reply: Deserialize<'b>>(
    endpoint: CapSlot,
    interface: Interface,
    request: &Request,
    send_cap: Option<CapSlot>,
    receive: Option<CapSlot>,
    buffer: &'b mut [u8; PAYLOAD_MAX],
) -> Result<(Reply, bool), SessionError> {
    let len = encode(request, buffer)?;
    ipc::write_payload(&buffer[..len]);
    let send: &[CapSlot] = match &send_cap {
        Some(cap) => core::slice::from_ref(cap),
        None => &[],
    };
    ipc::set_send_caps(send);
    ipc::set_receive_slots(receive.as_slice());
    let message = Message {
        info: MsgInfo::new(interface as u32, len as u16, send.len() as u8),
        words: [0; 4],
    };
    let reply = sys::call(endpoint, message).map_err(SessionError::from)?;
    let len = ipc::read_payload(reply.info.payload_len(), buffer);
    let decoded = decode(&buffer[..len])?;
    Ok((decoded, reply.info.caps() > 0))
}

/// Asks `parent` something whose answer is `Done` or an error, sending
/// `send_cap` along.
fn parent_done(
    parent: CapSlot,
    request: &ParentRequest<'_>,
    send_cap: Option<CapSlot>,
) -> Result<(), SessionError> {
    let mut buffer = [0u8; PAYLOAD_MAX];
    match call_in::<_, ParentReply<'_>>(
        parent,
        Interface::Parent,
        request,
        send_cap,
        None,
        &mut buffer,
    )? {
        (ParentReply::Done, _) => Ok(()),
        (ParentReply::Error(error), _) => Err(error),
        _ => Err(SessionError::BadRequest),
    }
}

/// An open session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session capability.
    pub cap: CapSlot,
    /// The parent's id for upgrades and closing.
    pub id: u32,
}

/// Capability quota [`open_session`] donates with a session: one for each
/// parent on the way (two inits deep) and two for the server.
pub const SESSION_CAPS: u64 = 4;

/// How long [`open_session`] sleeps between asking after a pending session.
pub const POLL_INTERVAL_MS: u64 = 2;

/// Asks the parent for a session of `service`, donating `ram` and
/// [`SESSION_CAPS`] capabilities; see [`open_session_with_caps`].
pub fn open_session<Args: Serialize>(
    service: &str,
    label: &str,
    args: &Args,
    ram: u64,
    send_cap: Option<CapSlot>,
) -> Result<Session, SessionError> {
    open_session_with_caps(service, label, args, ram, SESSION_CAPS, send_cap)
}

/// Asks the parent for a session of `service`, donating `ram` and `caps`.
/// Waits (by yielding) while the provider has not announced the service
/// yet, asks once more with what a server says is missing in capability
/// quota, and while a server creates the session, asks after it every
/// [`POLL_INTERVAL_MS`] until it is there or has failed.
pub fn open_session_with_caps<Args: Serialize>(
    service: &str,
    label: &str,
    args: &Args,
    ram: u64,
    caps: u64,
    send_cap: Option<CapSlot>,
) -> Result<Session, SessionError> {
    let mut args_buffer = [0u8; 256];
    let args_len = encode(args, &mut args_buffer)?;
    let args = &args_buffer[..args_len];
    // init starts siblings together and refuses a service nobody has
    // announced yet; the provider is usually a yield away.
    let mut attempts = 0;
    let mut caps = caps;
    let opened = loop {
        match open_session_raw(slot::PARENT, service, label, args, ram, caps, send_cap) {
            Err(SessionError::Unavailable) if attempts < UNAVAILABLE_RETRIES => {
                attempts += 1;
                sys::yield_now();
            }
            Err(SessionError::InsufficientCaps { needed }) if attempts < UNAVAILABLE_RETRIES => {
                attempts = UNAVAILABLE_RETRIES;
                caps = caps.saturating_add(needed);
            }
            other => break other?,
        }
    };
    let mut id = match opened {
        Opened::Open(session) => return Ok(session),
        Opened::Pending(id) => id,
    };
    loop {
        pause(POLL_INTERVAL_MS);
        match session_status(slot::PARENT, id)? {
            Opened::Open(session) => return Ok(session),
            Opened::Pending(again) => id = again,
        }
    }
}

/// Sleeps `ms` milliseconds on a notification nobody signals (made on first
/// use), or yields when none could be made.
pub fn pause(ms: u64) {
    static SLEEPER: TryLock<Option<CapSlot>> = TryLock::new(None);
    let Some(mut sleeper) = SLEEPER.try_lock() else {
        return sys::yield_now();
    };
    if sleeper.is_none()
        && let Ok(cap) = slots::allocate()
    {
        match sys::create(arbor::abi::ObjectKind::Notification, slot::OWN_PD, cap, 0) {
            Ok(()) => *sleeper = Some(cap),
            Err(_) => slots::free(cap),
        }
    }
    match *sleeper {
        Some(notification) if sys::wait_timeout(notification, ms).is_ok() => {}
        _ => sys::yield_now(),
    }
}

/// How often [`open_session`] asks again for a service that is not (yet, or
/// again) announced before it reports it unavailable.
pub const UNAVAILABLE_RETRIES: u32 = 100_000;

/// What a session request came to: the session, or an id to ask after it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The session is open.
    Open(Session),
    /// A server is creating it; ask with [`session_status`].
    Pending(u32),
}

/// Asks `parent` for a session with already encoded `args` (what a parent
/// that forwards a child's request does); does not wait for a pending one.
pub fn open_session_raw(
    parent: CapSlot,
    service: &str,
    label: &str,
    args: &[u8],
    ram: u64,
    caps: u64,
    send_cap: Option<CapSlot>,
) -> Result<Opened, SessionError> {
    let request = ParentRequest::Session(SessionCall {
        service,
        label,
        args,
        ram,
        caps,
    });
    ask_for_session(parent, &request, send_cap)
}

/// Asks `parent` after the pending session `id`.
pub fn session_status(parent: CapSlot, id: u32) -> Result<Opened, SessionError> {
    ask_for_session(parent, &ParentRequest::SessionStatus { session: id }, None)
}

fn ask_for_session(
    parent: CapSlot,
    request: &ParentRequest<'_>,
    send_cap: Option<CapSlot>,
) -> Result<Opened, SessionError> {
    let cap = slots::allocate().map_err(SessionError::from)?;
    let mut buffer = [0u8; PAYLOAD_MAX];
    let result = call_in::<_, ParentReply<'_>>(
        parent,
        Interface::Parent,
        request,
        send_cap,
        Some(cap),
        &mut buffer,
    );
    match result {
        Ok((ParentReply::Session { session }, true)) => {
            return Ok(Opened::Open(Session { cap, id: session }));
        }
        Ok((ParentReply::Pending { session }, _)) => {
            slots::release(cap);
            return Ok(Opened::Pending(session));
        }
        _ => {}
    }
    slots::release(cap);
    match result {
        Ok((ParentReply::Error(error), _)) => Err(error),
        Err(error) => Err(error),
        Ok(_) => Err(SessionError::BadRequest),
    }
}

/// Donates more RAM to a session.
pub fn upgrade_session(session: &Session, ram: u64) -> Result<(), SessionError> {
    upgrade_session_raw(slot::PARENT, session.id, ram, 0)
}

/// Donates more RAM and capability quota to session `id` at `parent`.
pub fn upgrade_session_raw(
    parent: CapSlot,
    id: u32,
    ram: u64,
    caps: u64,
) -> Result<(), SessionError> {
    parent_done(
        parent,
        &ParentRequest::Upgrade {
            session: id,
            ram,
            caps,
        },
        None,
    )
}

/// Closes a session; its quota returns once the server has let it go.
pub fn close_session(session: Session) -> Result<(), SessionError> {
    slots::release(session.cap);
    close_session_raw(slot::PARENT, session.id)
}

/// Closes session `id` at `parent` (the capability is the caller's to release).
pub fn close_session_raw(parent: CapSlot, id: u32) -> Result<(), SessionError> {
    parent_done(parent, &ParentRequest::Close { session: id }, None)
}

/// Offers `service` to the parent, which signals `signal` (a badged
/// capability to a notification bound to the server's thread, with GRANT)
/// when work is waiting. Costs this component one capability of quota.
pub fn announce(service: &str, signal: CapSlot) -> Result<(), SessionError> {
    parent_done(
        slot::PARENT,
        &ParentRequest::Announce { service },
        Some(signal),
    )
}

/// A server fetches its parent's oldest work item for it into `buffer`
/// (`None`: nothing is waiting).
pub fn next_work(buffer: &mut [u8; PAYLOAD_MAX]) -> Result<Option<Work<'_>>, SessionError> {
    match call_in::<_, ParentReply<'_>>(
        slot::PARENT,
        Interface::Parent,
        &ParentRequest::NextRequest,
        None,
        None,
        buffer,
    )? {
        (ParentReply::Work(work), _) => Ok(Some(work)),
        (ParentReply::NoWork, _) => Ok(None),
        (ParentReply::Error(error), _) => Err(error),
        _ => Err(SessionError::BadRequest),
    }
}

/// A server tells its parent what came of work item `id`, sending `cap`
/// (the new session's capability) along.
pub fn deliver(id: u32, result: Delivery, cap: Option<CapSlot>) -> Result<(), SessionError> {
    parent_done(slot::PARENT, &ParentRequest::Deliver { id, result }, cap)
}

/// Tells the parent the component is done.
pub fn exit(code: i32) {
    let _ = parent_done(slot::PARENT, &ParentRequest::Exit { code }, None);
}

/// A Log session (a copy writes to the same session: Log has no close).
#[derive(Clone, Copy)]
pub struct Log {
    session: Session,
}

/// RAM a Log session costs its server.
pub const LOG_SESSION_RAM: u64 = 4096;

impl Log {
    /// Opens a Log session labelled `label`.
    pub fn open(label: &str) -> Result<Self, SessionError> {
        open_session(
            crate::services::name::LOG,
            label,
            &(),
            LOG_SESSION_RAM,
            None,
        )
        .map(|session| Log { session })
    }

    /// Writes text; long text goes in several messages.
    pub fn write(&self, text: &str) -> Result<(), SessionError> {
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = rest.len().min(PAYLOAD_MAX - 16);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (chunk, tail) = rest.split_at(end);
            match call::<_, SimpleReply>(
                self.session.cap,
                Interface::Session,
                &LogRequest::Write { text: chunk },
                None,
                None,
            )? {
                (SimpleReply::Done, _) => {}
                (SimpleReply::Error(error), _) => return Err(error),
            }
            rest = tail;
        }
        Ok(())
    }
}

/// RAM a Rom session donates first (16 pages).
pub const ROM_SESSION_RAM: u64 = 16 * 4096;

/// A Rom module mapped read-only into this component.
pub struct Rom {
    /// The module's bytes.
    pub bytes: &'static [u8],
    /// The dataspace capability.
    pub dataspace: CapSlot,
    /// The session.
    pub session: Session,
}

impl Rom {
    /// Opens the module `name` and maps it. The server copies the module
    /// into a dataspace paid from the donated RAM; when 16 pages do not
    /// cover it, the server says how much more is needed and we ask again.
    pub fn open(name: &str) -> Result<Self, SessionError> {
        match Self::open_with_quota(name, ROM_SESSION_RAM) {
            Err(SessionError::InsufficientQuota { needed }) => {
                Self::open_with_quota(name, ROM_SESSION_RAM + needed.next_multiple_of(4096))
            }
            other => other,
        }
    }

    /// Opens the module `name`, donating `ram` (the module's size plus a page at least).
    pub fn open_with_quota(name: &str, ram: u64) -> Result<Self, SessionError> {
        let session = open_session(crate::services::name::ROM, name, &(), ram, None)?;
        let dataspace = slots::allocate().map_err(SessionError::from)?;
        let (reply, got_cap) = call::<_, RomReply>(
            session.cap,
            Interface::Session,
            &RomRequest::Dataspace,
            None,
            Some(dataspace),
        )?;
        let size = match (reply, got_cap) {
            (RomReply::Dataspace { size }, true) => size,
            (RomReply::Error(error), _) => return Err(error),
            _ => return Err(SessionError::BadRequest),
        };
        let bytes = map_read_only(dataspace, size)?;
        Ok(Rom {
            bytes,
            dataspace,
            session,
        })
    }
}

/// Maps `size` bytes of a dataspace read-only into this component.
pub fn map_read_only(dataspace: CapSlot, size: u64) -> Result<&'static [u8], SessionError> {
    arbor::vspace::map_read_only(dataspace, size).map_err(SessionError::from)
}

/// A Timer session, signalling this component's notification.
pub struct Timer {
    session: Session,
    notification: CapSlot,
}

/// RAM a Timer session costs its server.
pub const TIMER_SESSION_RAM: u64 = 4096;

impl Timer {
    /// Opens a Timer session and a notification for its signals.
    pub fn open(label: &str) -> Result<Self, SessionError> {
        let session = open_session(
            crate::services::name::TIMER,
            label,
            &(),
            TIMER_SESSION_RAM,
            None,
        )?;
        let notification = slots::allocate().map_err(SessionError::from)?;
        sys::create(
            arbor::abi::ObjectKind::Notification,
            slot::OWN_PD,
            notification,
            0,
        )
        .map_err(SessionError::from)?;
        let timer = Timer {
            session,
            notification,
        };
        timer.request(TimerRequest::SetNotification, Some(notification))?;
        Ok(timer)
    }

    fn request(
        &self,
        request: TimerRequest,
        cap: Option<CapSlot>,
    ) -> Result<TimerReply, SessionError> {
        match call::<_, TimerReply>(self.session.cap, Interface::Session, &request, cap, None)? {
            (TimerReply::Error(error), _) => Err(error),
            (reply, _) => Ok(reply),
        }
    }

    /// Blocks for `ms` milliseconds.
    pub fn sleep(&self, ms: u64) -> Result<(), SessionError> {
        self.request(TimerRequest::OneShot { ms }, None)?;
        sys::wait(self.notification).map_err(SessionError::from)?;
        Ok(())
    }

    /// Milliseconds since the timer started.
    pub fn elapsed_ms(&self) -> Result<u64, SessionError> {
        match self.request(TimerRequest::Elapsed, None)? {
            TimerReply::Elapsed { ms } => Ok(ms),
            _ => Err(SessionError::BadRequest),
        }
    }

    /// Asks for a signal every `ms` milliseconds on [`Timer::notification`].
    pub fn periodic(&self, ms: u64) -> Result<(), SessionError> {
        self.request(TimerRequest::Periodic { ms }, None).map(drop)
    }

    /// The notification the timer signals.
    pub fn notification(&self) -> CapSlot {
        self.notification
    }
}

/// One request a server received.
pub struct Incoming {
    /// The badge of the capability the client used.
    pub badge: Badge,
    /// The interface the label names (None: not one of ours).
    pub interface: Option<Interface>,
    /// The raw label.
    pub label: u32,
    /// The payload bytes (copied out of the IPC buffer).
    pub payload: [u8; PAYLOAD_MAX],
    /// How many payload bytes are valid.
    pub len: usize,
    /// Whether a capability arrived (in the slot the server offered).
    pub cap_received: bool,
    /// The register words.
    pub words: [u64; 4],
}

impl Incoming {
    /// The valid payload.
    pub fn bytes(&self) -> &[u8] {
        &self.payload[..self.len]
    }
}

/// What came with a message besides its bytes ([`Endpoint::next_keeping`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// No capability.
    Nothing,
    /// A capability, in a slot that is now the caller's to keep or release.
    Cap(CapSlot),
    /// A capability arrived, but no slot was free for the next one: it was
    /// dropped, and the request should be refused.
    Dropped(arbor::abi::Error),
}

/// A server's side of IPC: reply to the last request and wait for the next.
pub struct Endpoint {
    /// The endpoint capability the server receives on.
    pub cap: CapSlot,
    reply: Option<(usize, Option<CapSlot>)>,
    reply_buffer: [u8; PAYLOAD_MAX],
}

impl Endpoint {
    /// A server loop on `cap`.
    pub fn new(cap: CapSlot) -> Self {
        Endpoint {
            cap,
            reply: None,
            reply_buffer: [0; PAYLOAD_MAX],
        }
    }

    /// Sets the reply to the request being handled (sent with the next receive).
    pub fn set_reply<Reply: Serialize>(&mut self, reply: &Reply, cap: Option<CapSlot>) {
        let len = encode(reply, &mut self.reply_buffer).unwrap_or(0);
        self.reply = Some((len, cap));
    }

    /// Like [`Endpoint::next`] for a serve loop that must never end: keeps
    /// `receive` an empty slot for the next capability. A capability that
    /// arrives while no slot is free for the one after is dropped
    /// ([`Arrival::Dropped`]): the caller refuses that request and goes on.
    pub fn next_keeping(
        &mut self,
        receive: &mut Option<CapSlot>,
    ) -> Result<(Incoming, Arrival), arbor::abi::Error> {
        let incoming = self.next(*receive)?;
        let arrival = match (incoming.cap_received, *receive) {
            (true, Some(cap)) => match slots::allocate() {
                Ok(fresh) => {
                    *receive = Some(fresh);
                    Arrival::Cap(cap)
                }
                Err(error) => {
                    let _ = sys::delete(cap);
                    Arrival::Dropped(error)
                }
            },
            _ => {
                if receive.is_none() {
                    *receive = slots::allocate().ok();
                }
                Arrival::Nothing
            }
        };
        Ok((incoming, arrival))
    }

    /// The next request of a parent's serve loop (core's, init's), and the
    /// capability that came with it: waits again after a failed receive,
    /// and refuses with a [`ParentReply::Error`] (returning `None`) a
    /// request whose capability could not be kept. `log` hears of both.
    pub fn next_parent_request(
        &mut self,
        receive: &mut Option<CapSlot>,
        mut log: impl FnMut(core::fmt::Arguments<'_>),
    ) -> Option<(Incoming, Option<CapSlot>)> {
        loop {
            match self.next_keeping(receive) {
                Err(error) => log(format_args!("receive failed: {error}; waiting again")),
                Ok((incoming, Arrival::Cap(cap))) => return Some((incoming, Some(cap))),
                Ok((incoming, Arrival::Nothing)) => return Some((incoming, None)),
                Ok((_, Arrival::Dropped(error))) => {
                    log(format_args!(
                        "{error}: refused a request that carried a capability"
                    ));
                    self.set_reply(&ParentReply::Error(SessionError::from(error)), None);
                    return None;
                }
            }
        }
    }

    /// Replies (if a reply was set) and receives the next request, offering
    /// `receive` for an incoming capability.
    pub fn next(&mut self, receive: Option<CapSlot>) -> Result<Incoming, arbor::abi::Error> {
        let reply = match self.reply.take() {
            Some((len, cap)) => {
                ipc::write_payload(&self.reply_buffer[..len]);
                ipc::set_send_caps(cap.as_slice());
                Message {
                    info: MsgInfo::new(0, len as u16, u8::from(cap.is_some())),
                    words: [0; 4],
                }
            }
            None => Message::default(),
        };
        ipc::set_receive_slots(receive.as_slice());
        let (badge, message) = sys::reply_recv(self.cap, reply)?;
        let mut incoming = Incoming {
            badge,
            interface: Interface::from_label(message.label()),
            label: message.label(),
            payload: [0; PAYLOAD_MAX],
            len: 0,
            cap_received: message.info.caps() > 0,
            words: message.words,
        };
        incoming.len = ipc::read_payload(message.info.payload_len(), &mut incoming.payload);
        Ok(incoming)
    }
}
