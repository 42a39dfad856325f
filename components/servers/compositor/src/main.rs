//! compositor: the Gui server. Clients draw into their own buffers; the
//! compositor alone decides what appears where, labels every view with its
//! client's session label in a strip no client can cover, and gives input
//! only to the focused client.
//!
//! Wiring only: the decisions are in the library (`compositor::scene`,
//! `compose`, `focus`, `refresh`, `policy`), tested on the host. Start-up:
//! a Framebuffer session (the screen, mapped), a Timer session whose
//! periodic signal is a frame, then Gui sessions served through the server
//! framework. A client's refresh only records damage; each frame paints the
//! damage and flushes it, and resets every client's refresh budget.
//!
//! It never trusts a client: requests go through the checked decoder, every
//! rectangle is clipped, a buffer costs the session's own donation, and a
//! closed or dead client's views and buffer are gone at once.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use arbor::abi::{CapSlot, ObjectKind, info, slot};
use arbor::{slots, sys, vspace};
use arbor_sessions::client::{self, Session, call, open_session};
use arbor_sessions::framebuffer::{self, FramebufferReply, FramebufferRequest, Mode, Rect};
use arbor_sessions::gui::{self, GuiReply, GuiRequest};
use arbor_sessions::input::{self, BATCH_MAX, Event, EventQueue, InputReply, InputRequest};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{TimerReply, TimerRequest, name};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{Interface, SessionError, env, log};
use compositor::compose::{self, Buffer, Clients};
use compositor::focus::Focus;
use compositor::latency::{self, Latency};
use compositor::policy::Policy;
use compositor::refresh::{Admission, Budget, Complaints, Damage};
use compositor::scene::{ClientId, Scene};

arbor::entry!(run);

/// The server's notification bit the frame timer signals.
const FRAME_BIT: u64 = 1;
/// The server's notification bit the input driver signals.
const INPUT_BIT: u64 = 2;
/// RAM donated for the Input session.
const INPUT_SESSION_RAM: u64 = 8192;
/// RAM first offered for the Framebuffer session; the driver names what
/// else its buffer needs.
const FRAMEBUFFER_FIRST_OFFER: u64 = 16 * 1024;

fn run(_argument: u64) {
    if let Err(error) = serve() {
        log!("stopped: {error}");
        client::exit(1);
    }
}

fn framebuffer_call(
    session: CapSlot,
    request: FramebufferRequest,
    receive: Option<CapSlot>,
) -> Result<(FramebufferReply, bool), SessionError> {
    match call::<_, FramebufferReply>(session, Interface::Session, &request, None, receive)? {
        (FramebufferReply::Error(error), _) => Err(error),
        reply => Ok(reply),
    }
}

fn timer_call(
    session: CapSlot,
    request: TimerRequest,
    cap: Option<CapSlot>,
) -> Result<(), SessionError> {
    match call::<_, TimerReply>(session, Interface::Session, &request, cap, None)? {
        (TimerReply::Error(error), _) => Err(error),
        _ => Ok(()),
    }
}

fn serve() -> Result<(), SessionError> {
    let policy = match env::config::<Policy>() {
        Ok(policy) => policy,
        Err(error) => {
            log!("config: {error}; using the default policy");
            Policy::default()
        }
    };
    // The screen: ask, and pay what the driver says its buffer costs.
    let screen_session: Session =
        match open_session(framebuffer::SERVICE, "", &(), FRAMEBUFFER_FIRST_OFFER, None) {
            Err(SessionError::InsufficientQuota { needed }) => open_session(
                framebuffer::SERVICE,
                "",
                &(),
                FRAMEBUFFER_FIRST_OFFER.saturating_add(needed),
                None,
            )?,
            other => other?,
        };
    let mode = match framebuffer_call(screen_session.cap, FramebufferRequest::Mode, None)? {
        (FramebufferReply::Mode(mode), _) => mode.checked()?,
        _ => return Err(SessionError::BadRequest),
    };
    let dataspace = slots::allocate().map_err(SessionError::from)?;
    match framebuffer_call(
        screen_session.cap,
        FramebufferRequest::Dataspace,
        Some(dataspace),
    )? {
        (FramebufferReply::Dataspace { size }, true) if size >= mode.buffer_bytes() => {}
        _ => return Err(SessionError::BadRequest),
    }
    let screen = vspace::map_pixels(dataspace, mode.pixels()).map_err(SessionError::from)?;

    let server = Server::new()?;
    let frame_signal = server.signal_cap(FRAME_BIT)?;
    let timer = open_session(name::TIMER, "frames", &(), client::TIMER_SESSION_RAM, None)?;
    timer_call(timer.cap, TimerRequest::SetNotification, Some(frame_signal))?;
    slots::release(frame_signal);
    timer_call(
        timer.cap,
        TimerRequest::Periodic {
            ms: policy.frame_ms(),
        },
        None,
    )?;
    log!(
        "screen {}x{}, a frame every {} ms, {} refreshes per client per frame",
        mode.width,
        mode.height,
        policy.frame_ms(),
        policy.refresh_budget
    );

    let input = if policy.input {
        let session = open_session(input::SERVICE, "", &(), INPUT_SESSION_RAM, None)?;
        let signal = server.signal_cap(INPUT_BIT)?;
        let set = call::<_, InputReply>(
            session.cap,
            Interface::Session,
            &InputRequest::SetNotification,
            Some(signal),
            None,
        );
        slots::release(signal);
        if let (InputReply::Error(error), _) = set? {
            return Err(error);
        }
        log!("input: keys to the focused client, click to focus");
        Some(session.cap)
    } else {
        None
    };

    let mut damage = Damage::new();
    damage.add(mode.bounds());
    let compositor = Compositor {
        latency: Latency::new(policy.latency_samples as usize),
        budget: Budget::new(policy.refresh_budget),
        policy,
        mode,
        screen,
        framebuffer: screen_session.cap,
        scene: Scene::new(),
        damage,
        focus: Focus::new(),
        frames: 0,
        input,
    };
    Err(server.serve(&[gui::SERVICE], compositor))
}

/// A client's pixel buffer, mapped here and in the client.
struct ClientBuffer {
    dataspace: CapSlot,
    pixels: &'static mut [u32],
    width: u32,
    height: u32,
}

/// One Gui session.
struct Client {
    colour: u32,
    buffer: Option<ClientBuffer>,
    events: EventQueue,
    notification: Option<CapSlot>,
    complaints: Complaints,
}

/// Logs a refusal of `entry`'s request, within its per-frame allowance.
macro_rules! complain {
    ($entry:expr, $($arg:tt)*) => {
        if $entry.state.complaints.admit() {
            log!($($arg)*);
        }
    };
}

impl Client {
    fn drop_buffer(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            vspace::unmap_pixels(buffer.pixels);
            let _ = sys::destroy(buffer.dataspace);
            slots::release(buffer.dataspace);
        }
    }

    fn deliver(&mut self, event: Event) {
        self.events.push(event);
        if let Some(notification) = self.notification {
            let _ = sys::signal(notification);
        }
    }
}

struct Compositor {
    policy: Policy,
    mode: Mode,
    screen: &'static mut [u32],
    framebuffer: CapSlot,
    scene: Scene,
    damage: Damage,
    budget: Budget,
    focus: Focus,
    frames: u64,
    input: Option<CapSlot>,
    /// Refresh-to-flush samples (the `gui_frame_ms` figure).
    latency: Latency,
}

/// The time stamp counter.
fn tsc() -> u64 {
    // SAFETY: rdtsc reads a counter and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The session table as the painter sees it.
struct Table<'a>(&'a SessionTable<Client>);

impl Clients for Table<'_> {
    fn buffer(&self, client: ClientId) -> Option<Buffer<'_>> {
        let buffer = self.0.get(client)?.state.buffer.as_ref()?;
        Some(Buffer {
            pixels: buffer.pixels,
            width: buffer.width,
            height: buffer.height,
        })
    }

    fn label(&self, client: ClientId) -> &str {
        self.0.get(client).map_or("?", |entry| entry.label.as_str())
    }

    fn strip_colour(&self, client: ClientId) -> u32 {
        self.0.get(client).map_or(0, |entry| entry.state.colour)
    }
}

impl Compositor {
    fn buffer(
        &mut self,
        entry: &mut Entry<Client>,
        width: u32,
        height: u32,
        call: &mut Call<'_>,
    ) -> Result<GuiReply, SessionError> {
        let cost = gui::buffer_cost(width, height).ok_or(SessionError::BadRequest)?;
        let needed = gui::SESSION_RAM.saturating_add(cost);
        if entry.quota.ram < needed {
            complain!(
                entry,
                "\"{}\" asked for a {width}x{height} buffer ({cost} bytes) beyond its donation: refused",
                entry.label
            );
            return Err(SessionError::InsufficientQuota {
                needed: needed - entry.quota.ram,
            });
        }
        entry.state.drop_buffer();
        let dataspace = slots::allocate().map_err(SessionError::from)?;
        if let Err(error) = sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace, cost) {
            slots::free(dataspace);
            return Err(SessionError::from(error));
        }
        let pixels = match vspace::map_pixels(dataspace, u64::from(width) * u64::from(height)) {
            Ok(pixels) => pixels,
            Err(error) => {
                let _ = sys::destroy(dataspace);
                slots::release(dataspace);
                return Err(SessionError::from(error));
            }
        };
        entry.state.buffer = Some(ClientBuffer {
            dataspace,
            pixels,
            width,
            height,
        });
        for view in self
            .scene
            .views()
            .iter()
            .filter(|view| view.client == entry.badge)
        {
            self.damage.add(view.frame());
        }
        call.reply_cap(dataspace);
        Ok(GuiReply::Buffer { size: cost })
    }

    fn refresh(&mut self, entry: &mut Entry<Client>, rect: Rect) -> Result<GuiReply, SessionError> {
        match self.budget.admit(entry.badge) {
            Admission::Accepted => {}
            Admission::RefusedFirst => {
                complain!(
                    entry,
                    "\"{}\" exceeded its refresh budget of {} this frame: refused until the next",
                    entry.label,
                    self.budget.per_frame()
                );
                return Err(SessionError::Unavailable);
            }
            Admission::Refused => return Err(SessionError::Unavailable),
        }
        let Some(buffer) = entry.state.buffer.as_ref() else {
            return Err(SessionError::BadRequest);
        };
        let bounds = Rect::new(0, 0, buffer.width, buffer.height);
        let clipped = rect.intersect(&bounds);
        if clipped != rect {
            complain!(
                entry,
                "refresh of \"{}\" at ({}, {}, {} x {}) lies outside its {}x{} buffer: clipped to ({}, {}, {} x {})",
                entry.label,
                rect.x,
                rect.y,
                rect.width,
                rect.height,
                buffer.width,
                buffer.height,
                clipped.x,
                clipped.y,
                clipped.width,
                clipped.height
            );
        }
        for screen_rect in self.scene.refresh_damage(entry.badge, clipped) {
            self.damage.add(screen_rect);
        }
        self.latency.refreshed(tsc());
        Ok(GuiReply::Done)
    }

    fn place(
        &mut self,
        entry: &mut Entry<Client>,
        view: gui::ViewId,
        rect: Rect,
    ) -> Result<GuiReply, SessionError> {
        let placement = self.scene.place(entry.badge, view, rect)?;
        if let Some(other) = placement.covers_strip_of {
            complain!(
                entry,
                "view {} of \"{}\" at ({}, {}) overlaps the title strip of session {other}: the strip stays on top",
                view.0,
                entry.label,
                rect.x,
                rect.y
            );
        }
        self.damage.add(placement.damage);
        if self.policy.decide(&entry.label).pin_focus && self.focus.focused() != Some(entry.badge) {
            for (client, event) in self.focus.pin(entry.badge) {
                if client == entry.badge {
                    entry.state.deliver(event);
                }
            }
            log!("focus pinned to \"{}\"", entry.label);
        }
        Ok(GuiReply::Done)
    }

    /// Fetches the input driver's events and hands each to whom it is for.
    fn input(&mut self, sessions: &mut SessionTable<Client>) {
        let Some(input) = self.input else { return };
        loop {
            let batch = match call::<_, InputReply>(
                input,
                Interface::Session,
                &InputRequest::Events {
                    max: BATCH_MAX as u16,
                },
                None,
                None,
            ) {
                Ok((InputReply::Events(batch), _)) => batch,
                Ok(_) => return,
                Err(error) => {
                    log!("input: {error}");
                    return;
                }
            };
            if batch.events.is_empty() {
                return;
            }
            for event in batch.events {
                let before = self.focus.focused();
                for (client, delivered) in self.focus.route(&self.scene, event) {
                    if let Some(entry) = sessions.get_mut(client) {
                        entry.state.deliver(delivered);
                    }
                }
                let after = self.focus.focused();
                if after != before {
                    let label = after
                        .and_then(|client| sessions.get(client))
                        .map_or("nobody", |entry| entry.label.as_str());
                    log!("focus to \"{label}\"");
                }
            }
        }
    }

    /// Paints the damage of one frame and flushes it to the screen.
    fn frame(&mut self, sessions: &mut SessionTable<Client>) {
        self.budget.next_frame();
        for entry in sessions.iter_mut() {
            let unlogged = entry.state.complaints.next_frame();
            if unlogged > 0 {
                log!(
                    "\"{}\": {unlogged} more refusals in the last frame",
                    entry.label
                );
            }
        }
        let sessions = &*sessions;
        let rects = self.damage.take();
        if rects.is_empty() {
            return;
        }
        self.frames += 1;
        for rect in rects {
            let painted =
                compose::paint(&self.scene, &Table(sessions), self.screen, &self.mode, rect);
            if painted.is_empty() {
                continue;
            }
            if let Err(error) = call::<_, FramebufferReply>(
                self.framebuffer,
                Interface::Session,
                &FramebufferRequest::Refresh { rect: painted },
                None,
                None,
            ) {
                log!("flushing frame {}: {error}", self.frames);
            }
        }
        // The driver replied to the last refresh: its flush has completed.
        if let Some(median) = self.latency.flushed(tsc()) {
            let per_ms = sys::info(info::TSC_PER_MS, 0).map_or(1, |r| r.0);
            log!(
                "BENCH {{\"bench\":\"gui_frame_ms\",\"value\":{},\"unit\":\"ms\",\"screen\":\"{}x{}\",\"samples\":{}}}",
                latency::millis(median, per_ms),
                self.mode.width,
                self.mode.height,
                self.policy.latency_samples
            );
        }
    }
}

fn set_notification(client: &mut Client, call: &mut Call<'_>) -> Result<GuiReply, SessionError> {
    let Some(cap) = call.take_cap()? else {
        return Err(SessionError::BadRequest);
    };
    let is_notification = sys::info(info::CAP_KIND, u64::from(cap.0))
        .is_ok_and(|(kind, _)| kind == ObjectKind::Notification as u64);
    if !is_notification {
        slots::release(cap);
        return Err(SessionError::BadRequest);
    }
    if let Some(old) = client.notification.replace(cap) {
        slots::release(old);
    }
    Ok(GuiReply::Done)
}

impl Service for Compositor {
    type Session = Client;
    type Reply = GuiReply;

    fn create(
        &mut self,
        _service: &str,
        label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Client, SessionError> {
        quota.require(Quota {
            ram: gui::SESSION_RAM,
            caps: 2,
        })?;
        Ok(Client {
            colour: self.policy.decide(label).colour,
            buffer: None,
            events: EventQueue::new(),
            notification: None,
            complaints: Complaints::default(),
        })
    }

    fn opened(&mut self, session: &Entry<Client>) {
        log!(
            "session {} for \"{}\", strip colour 0x{:06x}",
            session.badge,
            session.label,
            session.state.colour
        );
    }

    fn close(&mut self, mut session: Entry<Client>) {
        let gone = self.scene.remove_client(session.badge);
        self.damage.add(gone);
        self.focus.forget(session.badge);
        session.state.drop_buffer();
        if let Some(notification) = session.state.notification.take() {
            slots::release(notification);
        }
        log!(
            "\"{}\" closed: its views are removed ({}, {}, {} x {} repainted)",
            session.label,
            gone.x,
            gone.y,
            gone.width,
            gone.height
        );
    }

    fn handle(&mut self, entry: &mut Entry<Client>, call: &mut Call<'_>) -> GuiReply {
        let request = match gui::decode_request(call.incoming.bytes()) {
            Ok(request) => request,
            Err(error) => {
                complain!(
                    entry,
                    "\"{}\" sent a request that is not one: refused",
                    entry.label
                );
                return GuiReply::Error(error);
            }
        };
        let result = match request {
            GuiRequest::Mode => Ok(GuiReply::Mode(self.mode)),
            GuiRequest::Buffer { width, height } => self.buffer(entry, width, height, call),
            GuiRequest::CreateView => self.scene.create(entry.badge).map(GuiReply::View),
            GuiRequest::Place { view, rect } => self.place(entry, view, rect),
            GuiRequest::DestroyView { view } => self.scene.destroy(entry.badge, view).map(|gone| {
                self.damage.add(gone);
                GuiReply::Done
            }),
            GuiRequest::Refresh { rect } => self.refresh(entry, rect),
            GuiRequest::SetNotification => set_notification(&mut entry.state, call),
            GuiRequest::Events { max } => Ok(GuiReply::Events(entry.state.events.take(max))),
        };
        result.unwrap_or_else(GuiReply::Error)
    }

    fn error(error: SessionError) -> GuiReply {
        GuiReply::Error(error)
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Client>) {
        if bits & INPUT_BIT != 0 {
            self.input(sessions);
        }
        if bits & FRAME_BIT != 0 {
            self.frame(sessions);
        }
    }
}
