//! pit_timer: the Timer service on the PC's programmable interval timer.
//!
//! It claims the PIT's ports and its interrupt line (IOAPIC input 2 on q35,
//! where ISA IRQ 0 is overridden to GSI 2) through its parent, lets channel 0
//! tick at 1 kHz, announces "Timer", and then serves any number of sessions
//! in one loop: the interrupt arrives as a bound notification on the same
//! receive, so ticks and requests never wait for each other.
//!
//! It never trusts a client: sessions are told apart by the badge on their
//! capability, durations are range-checked in [`pit_timer::schedule`], and
//! every session is paid from the RAM its client donated.
#![cfg_attr(target_os = "none", no_std, no_main)]

mod pit;

use arbor::abi::{CapSlot, NOTIFICATION_LABEL, ObjectKind, Rights, info, slot};
use arbor::slots;
use arbor::sys::{self, Badge};
use arbor_sessions::client::{self, Endpoint, Incoming, Session, kernel_error, open_session};
use arbor_sessions::parent::{ROOT_BADGE, RootReply, RootRequest};
use arbor_sessions::services::{IoPortArgs, IrqArgs, TimerReply, TimerRequest, name};
use arbor_sessions::{Interface, SessionError, decode, log};
use pit_timer::clock::{Clock, DIVISOR, TICK_HZ};
use pit_timer::schedule::Schedule;

arbor::entry!(run);

/// The PIT's interrupt line: ISA IRQ 0 arrives at IOAPIC input 2 on q35
/// (the ACPI MADT's interrupt source override).
const PIT_IRQ_LINE: u8 = 2;
/// RAM donated for each of the IoPort and Irq sessions (core's price for a
/// kernel resource object).
const RESOURCE_SESSION_RAM: u64 = 4096;

fn run(_argument: u64) {
    if let Err(error) = serve() {
        log!("stopped: {error}");
        client::exit(1);
    }
}

/// A failure during start-up or of the server loop itself, with what was
/// being done.
struct Failure(&'static str, SessionError);

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

trait Context<T> {
    fn context(self, what: &'static str) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, SessionError> {
    fn context(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|error| Failure(what, error))
    }
}

impl<T> Context<T> for Result<T, arbor::abi::Error> {
    fn context(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|error| Failure(what, kernel_error(error)))
    }
}

fn serve() -> Result<(), Failure> {
    // Every session the driver needs is opened before it announces: init
    // calls a server's root synchronously, so it cannot answer this
    // component's own requests while it waits for an answer from it.
    log!("PIT channel 0 at {TICK_HZ} Hz (divisor {DIVISOR}), IRQ line {PIT_IRQ_LINE}");
    let ports = open_session(
        name::IO_PORT,
        "",
        &IoPortArgs {
            first: pit::FIRST_PORT,
            count: pit::PORT_COUNT,
        },
        RESOURCE_SESSION_RAM,
        None,
    )
    .context("IoPort session for the PIT")?;
    let pit = pit::Pit::enable(ports.cap).context("enabling the PIT's ports")?;

    let irq_notification = new_object(ObjectKind::Notification).context("IRQ notification")?;
    let irq: Session = open_session(
        name::IRQ,
        "",
        &IrqArgs { line: PIT_IRQ_LINE },
        RESOURCE_SESSION_RAM,
        Some(irq_notification),
    )
    .context("Irq session for the PIT")?;

    let endpoint = new_object(ObjectKind::Endpoint).context("service endpoint")?;
    sys::bind_notification(slot::OWN_THREAD, irq_notification)
        .context("binding the IRQ notification")?;
    pit.start_periodic(DIVISOR);

    let root = slots::allocate().context("root capability slot")?;
    sys::derive(
        endpoint,
        root,
        Rights::WRITE.union(Rights::GRANT),
        ROOT_BADGE,
    )
    .context("root capability")?;
    client::announce(name::TIMER, root).context("announcing Timer")?;

    let mut server = Server {
        endpoint: Endpoint::new(endpoint),
        irq: irq.cap,
        clock: Clock::new(),
        schedule: Schedule::new(),
        receive: slots::allocate().context("receive slot")?,
        sent: None,
    };
    loop {
        let incoming = server
            .endpoint
            .next(Some(server.receive))
            .context("receiving")?;
        server.handle(&incoming);
    }
}

/// A new kernel object of `kind` in a fresh slot, paid by this Pd.
fn new_object(kind: ObjectKind) -> Result<CapSlot, arbor::abi::Error> {
    let cap = slots::allocate()?;
    sys::create(kind, slot::OWN_PD, cap, 0)
        .inspect_err(|_| slots::free(cap))
        .map(|()| cap)
}

struct Server {
    endpoint: Endpoint,
    /// The kernel Irq capability, acknowledged after every tick.
    irq: CapSlot,
    clock: Clock,
    /// Sessions by badge, each with its notification slot.
    schedule: Schedule<CapSlot>,
    /// The empty slot offered for a capability arriving with a request.
    receive: CapSlot,
    /// A session capability handed out with the last reply; the driver
    /// keeps no copy once the reply has gone.
    sent: Option<CapSlot>,
}

impl Server {
    fn handle(&mut self, incoming: &Incoming) {
        if let Some(cap) = self.sent.take() {
            slots::release(cap);
        }
        match (incoming.interface, incoming.badge) {
            (None, _) if incoming.label == NOTIFICATION_LABEL => self.tick(),
            (Some(Interface::Root), Badge(ROOT_BADGE)) => self.root(incoming),
            (Some(Interface::Session), badge) if badge != Badge(ROOT_BADGE) => {
                let reply = self.session(badge, incoming);
                self.endpoint.set_reply(&reply, None);
            }
            _ => self
                .endpoint
                .set_reply(&TimerReply::Error(SessionError::BadRequest), None),
        }
        // A capability nobody took is dropped, so that the slot is empty for
        // the next one (if it was taken, `receive` is a fresh, empty slot and
        // the delete is a harmless error).
        if incoming.cap_received {
            let _ = sys::delete(self.receive);
        }
    }

    /// One PIT interrupt: count it, let the line fire again, signal who is due.
    fn tick(&mut self) {
        self.clock.tick();
        // Without the acknowledgement the clock stops; nothing better to do
        // than try again at the next interrupt, which then never comes.
        let _ = sys::ack_irq(self.irq);
        self.schedule.expire(self.clock.now_ms(), |&notification| {
            // A client that destroyed its notification only loses its signal.
            let _ = sys::signal(notification);
        });
    }

    fn root(&mut self, incoming: &Incoming) {
        let reply = match decode::<RootRequest<'_>>(incoming.bytes()) {
            Ok(RootRequest::Create { label, ram, .. }) => match self.create(ram) {
                Ok((badge, cap)) => {
                    log!("session {} for \"{label}\"", badge.0);
                    self.sent = Some(cap);
                    return self
                        .endpoint
                        .set_reply(&RootReply::Created { badge: badge.0 }, Some(cap));
                }
                Err(error) => RootReply::Error(error),
            },
            Ok(RootRequest::Upgrade { badge, ram }) => {
                match self.schedule.upgrade(Badge(badge), ram) {
                    Ok(()) => RootReply::Done { ram: 0 },
                    Err(error) => RootReply::Error(error),
                }
            }
            Ok(RootRequest::Close { badge }) => match self.schedule.close(Badge(badge)) {
                Ok((ram, notification)) => {
                    if let Some(notification) = notification {
                        slots::release(notification);
                    }
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
        let badge = self.schedule.create(ram)?;
        let cap = slots::allocate()
            .and_then(|cap| {
                sys::derive(
                    self.endpoint.cap,
                    cap,
                    Rights::WRITE.union(Rights::GRANT),
                    badge.0,
                )
                .inspect_err(|_| slots::free(cap))
                .map(|()| cap)
            })
            .map_err(kernel_error);
        match cap {
            Ok(cap) => Ok((badge, cap)),
            Err(error) => {
                let _ = self.schedule.close(badge);
                Err(error)
            }
        }
    }

    fn session(&mut self, badge: Badge, incoming: &Incoming) -> TimerReply {
        if !self.schedule.contains(badge) {
            return TimerReply::Error(SessionError::NoSuchSession);
        }
        let now = self.clock.now_ms();
        let result = match decode::<TimerRequest>(incoming.bytes()) {
            Ok(TimerRequest::SetNotification) => self.set_notification(badge, incoming),
            Ok(TimerRequest::OneShot { ms }) => self.schedule.one_shot(badge, now, ms),
            Ok(TimerRequest::Periodic { ms }) => self.schedule.periodic(badge, now, ms),
            Ok(TimerRequest::Elapsed) => return TimerReply::Elapsed { ms: now },
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => TimerReply::Done,
            Err(error) => TimerReply::Error(error),
        }
    }

    /// Takes the notification that arrived with the request for `badge`.
    fn set_notification(&mut self, badge: Badge, incoming: &Incoming) -> Result<(), SessionError> {
        let is_notification = sys::info(info::CAP_KIND, u64::from(self.receive.0))
            .is_ok_and(|(kind, _)| kind == ObjectKind::Notification as u64);
        if !incoming.cap_received || !is_notification {
            return Err(SessionError::BadRequest);
        }
        // The next capability needs an empty slot before this one is kept.
        let fresh = slots::allocate().map_err(kernel_error)?;
        let notification = core::mem::replace(&mut self.receive, fresh);
        if let Some(old) = self.schedule.set_notification(badge, notification)? {
            slots::release(old);
        }
        Ok(())
    }
}
