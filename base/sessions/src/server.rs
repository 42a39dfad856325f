//! The one way to write a server: a [`Service`] says what its sessions are
//! and how it answers their requests; [`Server`] does the rest, once for
//! every server in the tree.
//!
//! What the framework does:
//! - One endpoint receives every session call and one notification, bound
//!   to the server's thread, receives every signal: the parent's "work is
//!   waiting" ([`PARENT_WORK`]) and the server's own (an IRQ, a timeout),
//!   whose capabilities [`Server::signal_cap`] makes.
//! - It announces each service with a signal capability and, when
//!   signalled, fetches the parent's work items ([`ParentRequest::NextRequest`]),
//!   creates, upgrades or closes sessions through the [`Service`], and
//!   delivers the result ([`ParentRequest::Deliver`]) with the badged
//!   session capability. The server keeps no copy of a session capability:
//!   once delivered its slot is released (the one rule for session caps).
//! - Calls are told apart **by badge**: a receive woken by the notification
//!   is the only message with badge 0 (no session badge is 0, see
//!   [`crate::table`]), so a client cannot pass for an interrupt whatever
//!   label it sends; a call whose badge is not in the table, or whose label
//!   is not the session interface, gets an error reply and does nothing else.
//! - A failed receive never ends the loop: it is logged and the server waits
//!   again.
//!
//! The root of the tree (core) has one client, its child, and answers its
//! parent calls at once: [`Root`] is the same table and dispatch with
//! sessions created, upgraded and closed in that call.
//!
//! Models: Hubris's `hl::recv` (one receive, dispatch by who called) and
//! Genode's `Root_component` (create/upgrade/close paid from the session's
//! donation).

use crate::client::{Endpoint, Incoming, deliver, next_work, pause};
use crate::parent::{Delivery, Work};
use crate::table::{Entry, Quota, SessionTable};
use crate::{Interface, SessionError, decode};
use arbor::abi::{CapSlot, NOTIFICATION_LABEL, ObjectKind, PAYLOAD_MAX, Rights, slot};
use arbor::{slots, sys};
use serde::Serialize;
use serde::de::Deserialize;

/// The notification bit the parent's signal capability carries: work waits.
/// [`Server::signal_cap`] refuses it for the server's own signals.
pub const PARENT_WORK: u64 = 1 << 63;

/// What a server says about its sessions; the framework calls it.
pub trait Service {
    /// The server's state for one session.
    type Session;
    /// The session interface's reply type.
    type Reply: Serialize;

    /// Creates a session of `service` for `label`, paid from `quota`, which
    /// is already in the server's Pd. Refuse with `InsufficientQuota` /
    /// `InsufficientCaps` when the donation does not cover it.
    fn create(
        &mut self,
        service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<Self::Session, SessionError>;

    /// Answers one call on an open session.
    fn handle(&mut self, session: &mut Entry<Self::Session>, call: &mut Call<'_>) -> Self::Reply;

    /// The reply that carries `error`.
    fn error(error: SessionError) -> Self::Reply;

    /// A session was created and its capability delivered.
    fn opened(&mut self, _session: &Entry<Self::Session>) {}

    /// More quota for a session (already in the server's Pd; recorded in
    /// the entry by the framework).
    fn upgrade(&mut self, _session: &mut Entry<Self::Session>) -> Result<(), SessionError> {
        Ok(())
    }

    /// A session closes; release what it holds (its quota goes back).
    fn close(&mut self, _session: Entry<Self::Session>) {}

    /// The capability a [`Root`] hands out for a session: `None` (the
    /// default) for an endpoint capability badged for it, or the service's
    /// own (a kernel resource that is the session, like an Irq).
    fn session_cap(&self, _session: &Entry<Self::Session>) -> Option<CapSlot> {
        None
    }

    /// The server's own notification bits (never [`PARENT_WORK`]) arrived.
    fn signal(&mut self, _bits: u64, _sessions: &mut SessionTable<Self::Session>) {}
}

/// One call on a session, as the [`Service`] sees it.
pub struct Call<'a> {
    /// The message.
    pub incoming: &'a Incoming,
    receive: &'a mut CapSlot,
    reply_cap: Option<CapSlot>,
}

impl Call<'_> {
    /// The request, decoded (`BadRequest` if it is not one).
    pub fn request<'b, T: Deserialize<'b>>(&'b self) -> Result<T, SessionError> {
        decode(self.incoming.bytes())
    }

    /// Takes the capability that came with the call, if one did; the
    /// service owns its slot from now on.
    pub fn take_cap(&mut self) -> Result<Option<CapSlot>, SessionError> {
        if !self.incoming.cap_received {
            return Ok(None);
        }
        let fresh = slots::allocate().map_err(SessionError::from)?;
        Ok(Some(core::mem::replace(self.receive, fresh)))
    }

    /// Sends `cap` with the reply (the service keeps owning it).
    pub fn reply_cap(&mut self, cap: CapSlot) {
        self.reply_cap = Some(cap);
    }
}

/// Who a received message is from, decided by badge alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The server's bound notification: these bits were signalled.
    Notification(u64),
    /// A call on the session capability badged with this.
    Session(u64),
    /// Badge 0 without the kernel's notification label: nobody this server
    /// gave a capability to.
    Stranger,
}

/// Classifies a receive by its badge (and, for badge 0, the kernel's label).
pub fn classify(badge: u64, label: u32, first_word: u64) -> Sender {
    match badge {
        0 if label == NOTIFICATION_LABEL => Sender::Notification(first_word),
        0 => Sender::Stranger,
        badge => Sender::Session(badge),
    }
}

/// The open session a call with `badge` on `interface` is for: a badge not
/// in the table is `NoSuchSession`, anything but the session interface
/// (the kernel's notification label, say) is `BadRequest`.
pub fn session_for<S>(
    table: &mut SessionTable<S>,
    badge: u64,
    interface: Option<Interface>,
) -> Result<&mut Entry<S>, SessionError> {
    let entry = table.get_mut(badge).ok_or(SessionError::NoSuchSession)?;
    if interface != Some(Interface::Session) {
        return Err(SessionError::BadRequest);
    }
    Ok(entry)
}

/// What came of a work item, before the capability is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A session was admitted under this badge (its capability is to be made).
    Created(u64),
    /// Upgrade or close done.
    Done,
    /// Refused.
    Refused(SessionError),
}

/// Carries out one work item on `service` and `table` (the part of the
/// parent exchange that needs no kernel).
pub fn perform<S: Service>(
    service: &mut S,
    table: &mut SessionTable<S::Session>,
    work: &Work<'_>,
) -> Outcome {
    match *work {
        Work::Create { call, .. } => {
            let (quota, label) = (call.quota(), call.label);
            let state = match service.create(call.service, label, call.args, quota) {
                Ok(state) => state,
                Err(error) => return Outcome::Refused(error),
            };
            match table.admit(label, quota, state) {
                Ok(badge) => Outcome::Created(badge),
                Err(error) => Outcome::Refused(error),
            }
        }
        Work::Upgrade {
            badge, ram, caps, ..
        } => {
            if let Err(error) = table.upgrade(badge, Quota { ram, caps }) {
                return Outcome::Refused(error);
            }
            match table.get_mut(badge).map(|entry| service.upgrade(entry)) {
                Some(Ok(())) => Outcome::Done,
                Some(Err(error)) => Outcome::Refused(error),
                None => Outcome::Refused(SessionError::NoSuchSession),
            }
        }
        Work::Close { badge, .. } => match table.remove(badge) {
            Ok(entry) => {
                service.close(entry);
                Outcome::Done
            }
            Err(error) => Outcome::Refused(error),
        },
    }
}

/// A server's endpoint, notification and receive slot.
pub struct Server {
    endpoint: Endpoint,
    notification: CapSlot,
    receive: CapSlot,
}

fn new_object(kind: ObjectKind) -> Result<CapSlot, SessionError> {
    let cap = slots::allocate().map_err(SessionError::from)?;
    sys::create(kind, slot::OWN_PD, cap, 0)
        .map_err(|error| {
            slots::free(cap);
            SessionError::from(error)
        })
        .map(|()| cap)
}

fn derive(source: CapSlot, rights: Rights, badge: u64) -> Result<CapSlot, SessionError> {
    let cap = slots::allocate().map_err(SessionError::from)?;
    sys::derive(source, cap, rights, badge)
        .map_err(|error| {
            slots::free(cap);
            SessionError::from(error)
        })
        .map(|()| cap)
}

impl Server {
    /// A new endpoint and a notification bound to this thread.
    pub fn new() -> Result<Self, SessionError> {
        let endpoint = new_object(ObjectKind::Endpoint)?;
        let notification = new_object(ObjectKind::Notification)?;
        sys::bind_notification(slot::OWN_THREAD, notification).map_err(SessionError::from)?;
        Ok(Server {
            endpoint: Endpoint::new(endpoint),
            notification,
            receive: slots::allocate().map_err(SessionError::from)?,
        })
    }

    /// A capability that signals `bits` to this server's loop (for an Irq
    /// session, say); [`Service::signal`] receives them. `bits` must be
    /// non-zero and leave [`PARENT_WORK`] alone.
    pub fn signal_cap(&self, bits: u64) -> Result<CapSlot, SessionError> {
        if bits == 0 || bits & PARENT_WORK != 0 {
            return Err(SessionError::BadRequest);
        }
        derive(self.notification, Rights::WRITE.union(Rights::GRANT), bits)
    }

    /// Announces `services` and serves them with `service` for good.
    /// Returns only if an announcement is refused.
    pub fn serve<S: Service>(mut self, services: &[&str], mut service: S) -> SessionError {
        for name in services {
            let announced = derive(
                self.notification,
                Rights::WRITE.union(Rights::GRANT),
                PARENT_WORK,
            )
            .and_then(|signal| {
                let result = crate::client::announce(name, signal);
                // The parent holds its own copy now.
                slots::release(signal);
                result
            });
            if let Err(error) = announced {
                crate::log!("announcing {name} refused: {error}");
                return error;
            }
        }
        let mut table = SessionTable::new();
        loop {
            let incoming = match self.endpoint.next(Some(self.receive)) {
                Ok(incoming) => incoming,
                Err(error) => {
                    crate::log!("receive failed: {error}; waiting again");
                    pause(1);
                    continue;
                }
            };
            match classify(incoming.badge.0, incoming.label, incoming.words[0]) {
                Sender::Notification(bits) => {
                    if bits & PARENT_WORK != 0 {
                        self.fetch_work(&mut service, &mut table);
                    }
                    if bits & !PARENT_WORK != 0 {
                        service.signal(bits & !PARENT_WORK, &mut table);
                    }
                }
                Sender::Session(badge) => {
                    self.session_call(&mut service, &mut table, badge, &incoming)
                }
                Sender::Stranger => self
                    .endpoint
                    .set_reply(&S::error(SessionError::BadRequest), None),
            }
            // A capability nobody took is dropped, so the slot is empty for
            // the next one (if it was taken, the slot is a fresh one).
            if incoming.cap_received {
                let _ = sys::delete(self.receive);
            }
        }
    }

    fn session_call<S: Service>(
        &mut self,
        service: &mut S,
        table: &mut SessionTable<S::Session>,
        badge: u64,
        incoming: &Incoming,
    ) {
        let entry = match session_for(table, badge, incoming.interface) {
            Ok(entry) => entry,
            Err(error) => return self.endpoint.set_reply(&S::error(error), None),
        };
        let mut call = Call {
            incoming,
            receive: &mut self.receive,
            reply_cap: None,
        };
        let reply = service.handle(entry, &mut call);
        let cap = call.reply_cap;
        self.endpoint.set_reply(&reply, cap);
    }

    /// Fetches and carries out work items until the parent has none left.
    fn fetch_work<S: Service>(&mut self, service: &mut S, table: &mut SessionTable<S::Session>) {
        loop {
            let mut buffer = [0u8; PAYLOAD_MAX];
            let work = match next_work(&mut buffer) {
                Ok(Some(work)) => work,
                Ok(None) => return,
                Err(error) => {
                    crate::log!("fetching work from the parent failed: {error}");
                    return;
                }
            };
            let id = work.id();
            let outcome = perform(service, table, &work);
            self.deliver(service, table, id, outcome);
        }
    }

    /// Tells the parent what came of item `id`, with the session capability
    /// for a new session; undoes the session if the parent refuses it.
    fn deliver<S: Service>(
        &mut self,
        service: &mut S,
        table: &mut SessionTable<S::Session>,
        id: u32,
        outcome: Outcome,
    ) {
        let (result, cap) = match outcome {
            Outcome::Created(badge) => {
                match derive(self.endpoint.cap, Rights::WRITE.union(Rights::GRANT), badge) {
                    Ok(cap) => (Delivery::Created { badge }, Some(cap)),
                    Err(error) => {
                        if let Ok(entry) = table.remove(badge) {
                            service.close(entry);
                        }
                        (Delivery::Refused(error), None)
                    }
                }
            }
            Outcome::Done => (Delivery::Done, None),
            Outcome::Refused(error) => (Delivery::Refused(error), None),
        };
        let answer = deliver(id, result, cap);
        // The parent holds its own copy of the session capability now: the
        // server keeps none (the one rule for session capabilities).
        if let Some(cap) = cap {
            slots::release(cap);
        }
        match (answer, result) {
            (Ok(()), Delivery::Created { badge }) => {
                if let Some(entry) = table.get(badge) {
                    service.opened(entry);
                }
            }
            (Ok(()), _) => {}
            (Err(refused), result) => {
                crate::log!("the parent refused the answer to request {id}: {refused}");
                if let Delivery::Created { badge } = result
                    && let Ok(entry) = table.remove(badge)
                {
                    service.close(entry);
                }
            }
        }
    }
}

/// The framework for the root of the tree (core): its only client is its
/// child, whose parent calls it answers at once, so sessions are created,
/// upgraded and closed in that call instead of being announced, fetched and
/// delivered. The table, the badges, the per-session quota and the dispatch
/// of session calls are the same as [`Server`]'s.
pub struct Root<S: Service> {
    /// The service.
    pub service: S,
    table: SessionTable<S::Session>,
    /// The endpoint session calls arrive on.
    endpoint: CapSlot,
    /// The capability handed out for each open session, by badge.
    caps: alloc::vec::Vec<(u64, CapSlot, bool)>,
}

impl<S: Service> Root<S> {
    /// Serves `service` on `endpoint`.
    pub fn new(endpoint: CapSlot, service: S) -> Self {
        Root {
            service,
            table: SessionTable::new(),
            endpoint,
            caps: alloc::vec::Vec::new(),
        }
    }

    /// Serves `service` on `endpoint` with badges from `first` on.
    pub fn with_first_badge(endpoint: CapSlot, service: S, first: u64) -> Self {
        Root {
            table: SessionTable::starting_at(first),
            ..Root::new(endpoint, service)
        }
    }

    /// Creates a session paid from `quota` (already in this Pd): its badge
    /// and the capability for the client. Nothing is left behind on failure.
    pub fn open(
        &mut self,
        name: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<(u64, CapSlot), SessionError> {
        let state = self.service.create(name, label, args, quota)?;
        let badge = self.table.admit(label, quota, state)?;
        let Some(entry) = self.table.get(badge) else {
            return Err(SessionError::NoSuchSession);
        };
        let made = match self.service.session_cap(entry) {
            Some(cap) => Ok((cap, false)),
            None => derive(self.endpoint, Rights::WRITE.union(Rights::GRANT), badge)
                .map(|cap| (cap, true)),
        };
        let (cap, derived) = match made.and_then(|made| {
            self.caps.try_reserve(1).map(|()| made).map_err(|_| {
                // No room to remember it: it cannot be revoked later.
                SessionError::InsufficientQuota { needed: 4096 }
            })
        }) {
            Ok(made) => made,
            Err(error) => {
                if let Ok(entry) = self.table.remove(badge) {
                    self.service.close(entry);
                }
                return Err(error);
            }
        };
        self.caps.push((badge, cap, derived));
        Ok((badge, cap))
    }

    /// Adds `more` (already in this Pd) to session `badge`.
    pub fn upgrade(&mut self, badge: u64, more: Quota) -> Result<(), SessionError> {
        self.table.upgrade(badge, more)?;
        match self.table.get_mut(badge) {
            Some(entry) => self.service.upgrade(entry),
            None => Err(SessionError::NoSuchSession),
        }
    }

    /// Closes session `badge`: the capability handed out is destroyed (so
    /// every copy the client holds dies), the service releases what the
    /// session holds, and its donation is returned to the caller to refund.
    pub fn close(&mut self, badge: u64) -> Result<Quota, SessionError> {
        let entry = self.table.remove(badge)?;
        if let Some(position) = self.caps.iter().position(|(b, _, _)| *b == badge) {
            let (_, cap, derived) = self.caps.swap_remove(position);
            if derived {
                drop(arbor::guard::SlotGuard::adopt(cap).destroying());
            }
        }
        let quota = entry.quota;
        self.service.close(entry);
        Ok(quota)
    }

    /// Whether `cap` is a capability handed out for an open session.
    pub fn holds(&self, cap: CapSlot) -> bool {
        self.caps.iter().any(|(_, held, _)| *held == cap)
    }

    /// Answers one call on a session: the reply and the capability it carries.
    pub fn call(
        &mut self,
        badge: u64,
        incoming: &Incoming,
        receive: &mut CapSlot,
    ) -> (S::Reply, Option<CapSlot>) {
        let entry = match session_for(&mut self.table, badge, incoming.interface) {
            Ok(entry) => entry,
            Err(error) => return (S::error(error), None),
        };
        let mut call = Call {
            incoming,
            receive,
            reply_cap: None,
        };
        let reply = self.service.handle(entry, &mut call);
        (reply, call.reply_cap)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// Sessions cost one page and know their label; closes are recorded.
    #[derive(Default)]
    struct Labels {
        closed: Vec<String>,
    }

    impl Service for Labels {
        type Session = String;
        type Reply = u8;

        fn create(
            &mut self,
            _service: &str,
            label: &str,
            _args: &[u8],
            quota: Quota,
        ) -> Result<String, SessionError> {
            quota.require(Quota { ram: 4096, caps: 1 })?;
            Ok(label.to_string())
        }

        fn handle(&mut self, _session: &mut Entry<String>, _call: &mut Call<'_>) -> u8 {
            0
        }

        fn error(_error: SessionError) -> u8 {
            1
        }

        fn close(&mut self, session: Entry<String>) {
            self.closed.push(session.state);
        }
    }

    fn create(id: u32, label: &str, ram: u64) -> Work<'_> {
        Work::Create {
            id,
            call: crate::parent::SessionCall {
                service: "Labels",
                label,
                args: &[],
                ram,
                caps: 1,
            },
        }
    }

    #[test]
    fn notifications_and_calls_are_told_apart_by_badge_only() {
        assert_eq!(classify(0, NOTIFICATION_LABEL, 5), Sender::Notification(5));
        // A client that sends the kernel's notification label on its
        // session is still a session call.
        assert_eq!(classify(7, NOTIFICATION_LABEL, 1), Sender::Session(7));
        assert_eq!(classify(0, 3, 1), Sender::Stranger);
    }

    #[test]
    fn calls_reach_only_open_sessions_on_the_session_interface() {
        let mut table = SessionTable::new();
        let badge = table.admit("a", Quota::default(), ()).unwrap();
        assert!(session_for(&mut table, badge, Some(Interface::Session)).is_ok());
        assert_eq!(
            session_for(&mut table, badge + 1, Some(Interface::Session)).err(),
            Some(SessionError::NoSuchSession)
        );
        // A forged tick: the kernel's notification label names no interface.
        assert_eq!(
            session_for(&mut table, badge, Interface::from_label(NOTIFICATION_LABEL)).err(),
            Some(SessionError::BadRequest)
        );
        assert_eq!(
            session_for(&mut table, badge, Some(Interface::Parent)).err(),
            Some(SessionError::BadRequest)
        );
    }

    #[test]
    fn create_upgrade_close_keep_the_books() {
        let mut service = Labels::default();
        let mut table = SessionTable::new();
        let Outcome::Created(badge) = perform(&mut service, &mut table, &create(1, "a", 4096))
        else {
            panic!("not created");
        };
        let upgrade = Work::Upgrade {
            id: 2,
            badge,
            ram: 4096,
            caps: 1,
        };
        assert_eq!(perform(&mut service, &mut table, &upgrade), Outcome::Done);
        assert_eq!(
            table.get(badge).map(|e| e.quota),
            Some(Quota { ram: 8192, caps: 2 })
        );
        let close = Work::Close { id: 3, badge };
        assert_eq!(perform(&mut service, &mut table, &close), Outcome::Done);
        assert_eq!(service.closed, ["a"]);
        assert!(table.is_empty());
        assert_eq!(
            perform(&mut service, &mut table, &close),
            Outcome::Refused(SessionError::NoSuchSession)
        );
    }

    #[test]
    fn a_short_donation_is_refused_and_admits_nothing() {
        let mut service = Labels::default();
        let mut table = SessionTable::new();
        assert_eq!(
            perform(&mut service, &mut table, &create(1, "poor", 1024)),
            Outcome::Refused(SessionError::InsufficientQuota { needed: 3072 })
        );
        assert!(table.is_empty());
        let upgrade = Work::Upgrade {
            id: 2,
            badge: 1,
            ram: 1,
            caps: 0,
        };
        assert_eq!(
            perform(&mut service, &mut table, &upgrade),
            Outcome::Refused(SessionError::NoSuchSession)
        );
    }

    /// A root service whose sessions are their own capabilities (as core's
    /// resource sessions are), so no system call is made on the host.
    #[derive(Default)]
    struct Resources {
        closed: Vec<u32>,
    }

    impl Service for Resources {
        type Session = u32;
        type Reply = u8;

        fn create(
            &mut self,
            _service: &str,
            label: &str,
            _args: &[u8],
            quota: Quota,
        ) -> Result<u32, SessionError> {
            quota.require(Quota { ram: 4096, caps: 1 })?;
            label.parse().map_err(|_| SessionError::BadRequest)
        }

        fn handle(&mut self, session: &mut Entry<u32>, _call: &mut Call<'_>) -> u8 {
            session.state as u8
        }

        fn error(_error: SessionError) -> u8 {
            0
        }

        fn session_cap(&self, session: &Entry<u32>) -> Option<CapSlot> {
            Some(CapSlot(session.state))
        }

        fn close(&mut self, session: Entry<u32>) {
            self.closed.push(session.state);
        }
    }

    #[test]
    fn a_root_opens_upgrades_and_closes_in_the_parents_call() {
        let mut root = Root::new(CapSlot(9), Resources::default());
        let page = Quota { ram: 4096, caps: 1 };
        let (badge, cap) = root.open("Res", "40", &[], page).unwrap();
        assert_eq!((badge, cap), (1, CapSlot(40)));
        assert!(root.holds(CapSlot(40)));
        root.upgrade(badge, page).unwrap();
        assert_eq!(root.close(badge), Ok(Quota { ram: 8192, caps: 2 }));
        assert_eq!(root.service.closed, [40]);
        assert!(!root.holds(CapSlot(40)));
        assert_eq!(root.close(badge), Err(SessionError::NoSuchSession));
        assert_eq!(root.upgrade(badge, page), Err(SessionError::NoSuchSession));
    }

    #[test]
    fn a_refused_root_session_leaves_nothing_behind() {
        let mut root = Root::new(CapSlot(9), Resources::default());
        assert_eq!(
            root.open("Res", "40", &[], Quota { ram: 0, caps: 1 }),
            Err(SessionError::InsufficientQuota { needed: 4096 })
        );
        assert_eq!(
            root.open("Res", "not a number", &[], Quota { ram: 4096, caps: 1 }),
            Err(SessionError::BadRequest)
        );
        assert!(root.table.is_empty() && root.caps.is_empty());
        // A refused session took no badge.
        let (badge, _) = root
            .open("Res", "41", &[], Quota { ram: 4096, caps: 1 })
            .unwrap();
        assert_eq!(badge, 1);
    }
}
