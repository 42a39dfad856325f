//! pit_timer: the Timer service on the PC's programmable interval timer.
//!
//! It claims the PIT's ports and its interrupt line (IOAPIC input 2 on q35,
//! where ISA IRQ 0 is overridden to GSI 2) through its parent, lets channel 0
//! tick at 1 kHz, announces "Timer", and then serves any number of sessions
//! through the server framework (`arbor_sessions::server`): the interrupt
//! arrives on the server's notification, so ticks and requests never wait
//! for each other.
//!
//! It never trusts a client: a tick is a signal of the IRQ bit on the
//! server's own notification, never a message a client sends (the framework
//! tells them apart by badge), durations are range-checked in
//! [`pit_timer::schedule`], and every session is paid from the RAM its
//! client donated.
#![cfg_attr(target_os = "none", no_std, no_main)]

mod pit;

use arbor::abi::{CapSlot, ObjectKind, info};
use arbor::slots;
use arbor::sys;
use arbor_sessions::client::{self, Session, open_session};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{IoPortArgs, IrqArgs, TimerReply, TimerRequest, name};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{SessionError, log};
use pit_timer::clock::{Clock, DIVISOR, TICK_HZ};
use pit_timer::schedule::{Alarm, SESSION_COST};

arbor::entry!(run);

/// The PIT's interrupt line: ISA IRQ 0 arrives at IOAPIC input 2 on q35
/// (the ACPI MADT's interrupt source override).
const PIT_IRQ_LINE: u8 = 2;
/// RAM donated for each of the IoPort and Irq sessions (core's price for a
/// kernel resource object).
const RESOURCE_SESSION_RAM: u64 = 4096;
/// The server's own notification bit the PIT interrupt signals.
const IRQ_BIT: u64 = 1;
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
        self.map_err(|error| Failure(what, SessionError::from(error)))
    }
}

fn serve() -> Result<(), Failure> {
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

    let server = Server::new().context("server endpoint and notification")?;
    let irq_signal = server
        .signal_cap(IRQ_BIT)
        .context("IRQ signal capability")?;
    let irq: Session = open_session(
        name::IRQ,
        "",
        &IrqArgs { line: PIT_IRQ_LINE },
        RESOURCE_SESSION_RAM,
        Some(irq_signal),
    )
    .context("Irq session for the PIT")?;
    // The Irq object signals the notification itself; this copy is not needed.
    slots::release(irq_signal);
    pit.start_periodic(DIVISOR);

    let timer = Timer {
        irq: irq.cap,
        clock: Clock::new(),
    };
    Err(Failure(
        "serving Timer",
        server.serve(&[name::TIMER], timer),
    ))
}

/// The Timer service: one clock, one alarm per session.
struct Timer {
    /// The kernel Irq capability, acknowledged after every tick.
    irq: CapSlot,
    clock: Clock,
}

impl Service for Timer {
    /// The session's alarm and the notification it signals.
    type Session = Alarm<CapSlot>;
    type Reply = TimerReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Alarm<CapSlot>, SessionError> {
        quota.require(SESSION_COST)?;
        Ok(Alarm::new())
    }

    fn opened(&mut self, session: &Entry<Alarm<CapSlot>>) {
        log!("session {} for \"{}\"", session.badge, session.label);
    }

    fn close(&mut self, mut session: Entry<Alarm<CapSlot>>) {
        if let Some(notification) = session.state.take_notification() {
            slots::release(notification);
        }
    }

    fn handle(&mut self, session: &mut Entry<Alarm<CapSlot>>, call: &mut Call<'_>) -> TimerReply {
        let now = self.clock.now_ms();
        let alarm = &mut session.state;
        let result = match call.request::<TimerRequest>() {
            Ok(TimerRequest::SetNotification) => set_notification(alarm, call),
            Ok(TimerRequest::OneShot { ms }) => alarm.one_shot(now, ms),
            Ok(TimerRequest::Periodic { ms }) => alarm.periodic(now, ms),
            Ok(TimerRequest::Elapsed) => return TimerReply::Elapsed { ms: now },
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => TimerReply::Done,
            Err(error) => TimerReply::Error(error),
        }
    }

    fn error(error: SessionError) -> TimerReply {
        TimerReply::Error(error)
    }

    /// One PIT interrupt: count it, let the line fire again, signal who is due.
    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Alarm<CapSlot>>) {
        if bits & IRQ_BIT == 0 {
            return;
        }
        self.clock.tick();
        // Without the acknowledgement the clock stops; nothing better to do
        // than try again at the next interrupt, which then never comes.
        let _ = sys::ack_irq(self.irq);
        let now = self.clock.now_ms();
        for entry in sessions.iter_mut() {
            if let Some(&notification) = entry.state.expire(now) {
                // A client that destroyed its notification only loses its signal.
                let _ = sys::signal(notification);
            }
        }
    }
}

/// Takes the notification that arrived with a SetNotification request.
fn set_notification(alarm: &mut Alarm<CapSlot>, call: &mut Call<'_>) -> Result<(), SessionError> {
    let Some(cap) = call.take_cap()? else {
        return Err(SessionError::BadRequest);
    };
    let is_notification = sys::info(info::CAP_KIND, u64::from(cap.0))
        .is_ok_and(|(kind, _)| kind == ObjectKind::Notification as u64);
    if !is_notification {
        slots::release(cap);
        return Err(SessionError::BadRequest);
    }
    if let Some(old) = alarm.set_notification(cap) {
        slots::release(old);
    }
    Ok(())
}
