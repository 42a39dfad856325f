//! input_script: an Input driver without a device. Its config holds a
//! script of clicks, typed text and keys; after `start_ms` it plays one
//! event each `step_ms` into its one session's bounded queue and signals
//! the client, as virtio_input would for a real keyboard and tablet.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::CapSlot;
use arbor::slots;
use arbor_sessions::client::{self, call, open_session};
use arbor_sessions::input::{self, Button, Event, InputReply, KeyCode, Listener};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{TimerReply, TimerRequest, name};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{Interface, SessionError, env, log};
use serde::Deserialize;

arbor::entry!(run);

/// The server's notification bit the timer signals.
const TICK_BIT: u64 = 1;

/// One step of the script.
#[derive(Deserialize)]
enum Step {
    /// Move the pointer to (x, y) and click the left button.
    Click(i32, i32),
    /// Type lowercase text and spaces (press and release per character).
    Text(String),
    /// Press and release a key by evdev code.
    Key(u16),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    start_ms: u64,
    step_ms: u64,
    script: Vec<Step>,
}

/// The key that types `character` without shift, if any.
fn key_for(character: char) -> Option<KeyCode> {
    (0..KeyCode::LIMIT)
        .map(KeyCode)
        .find(|&code| terminal::keys::character(code, false) == Some(character))
}

fn expand(script: &[Step]) -> VecDeque<Event> {
    let mut events = VecDeque::new();
    for step in script {
        match step {
            Step::Click(x, y) => {
                events.push_back(Event::Motion { x: *x, y: *y });
                events.push_back(Event::ButtonPress(Button::Left));
                events.push_back(Event::ButtonRelease(Button::Left));
            }
            Step::Text(text) => {
                for code in text.chars().filter_map(key_for) {
                    events.push_back(Event::Press(code));
                    events.push_back(Event::Release(code));
                }
            }
            Step::Key(code) => {
                if let Ok(code) = KeyCode::new(*code) {
                    events.push_back(Event::Press(code));
                    events.push_back(Event::Release(code));
                }
            }
        }
    }
    events
}

fn timer(
    session: CapSlot,
    request: TimerRequest,
    cap: Option<CapSlot>,
) -> Result<(), SessionError> {
    match call::<_, TimerReply>(session, Interface::Session, &request, cap, None)? {
        (TimerReply::Error(error), _) => Err(error),
        _ => Ok(()),
    }
}

fn run(_argument: u64) {
    if let Err(error) = serve() {
        log!("stopped: {error}");
        client::exit(1);
    }
}

fn serve() -> Result<(), SessionError> {
    let config = env::config::<Config>().map_err(|error| {
        log!("config: {error}");
        SessionError::BadRequest
    })?;
    let server = Server::new()?;
    let tick = server.signal_cap(TICK_BIT)?;
    let session = open_session(name::TIMER, "", &(), client::TIMER_SESSION_RAM, None)?;
    timer(session.cap, TimerRequest::SetNotification, Some(tick))?;
    slots::release(tick);
    timer(
        session.cap,
        TimerRequest::OneShot {
            ms: config.start_ms,
        },
        None,
    )?;
    let script = expand(&config.script);
    log!(
        "{} events to play from {} ms, one each {} ms",
        script.len(),
        config.start_ms,
        config.step_ms
    );
    let player = Player {
        timer: session.cap,
        step_ms: config.step_ms.max(1),
        started: false,
        script,
    };
    Err(server.serve(&[input::SERVICE], player))
}

struct Player {
    timer: CapSlot,
    step_ms: u64,
    started: bool,
    script: VecDeque<Event>,
}

impl Service for Player {
    type Session = Listener;
    type Reply = InputReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Listener, SessionError> {
        quota.require(Quota { ram: 4096, caps: 1 })?;
        Ok(Listener::default())
    }

    fn handle(&mut self, session: &mut Entry<Listener>, call: &mut Call<'_>) -> InputReply {
        session.state.handle(call)
    }

    fn error(error: SessionError) -> InputReply {
        InputReply::Error(error)
    }

    fn close(&mut self, session: Entry<Listener>) {
        session.state.close();
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Listener>) {
        if bits & TICK_BIT == 0 {
            return;
        }
        if !self.started {
            self.started = true;
            if let Err(error) = timer(
                self.timer,
                TimerRequest::Periodic { ms: self.step_ms },
                None,
            ) {
                log!("periodic timer: {error}");
            }
        }
        let Some(event) = self.script.pop_front() else {
            return;
        };
        for entry in sessions.iter_mut() {
            entry.state.deliver([event]);
        }
        if self.script.is_empty() {
            log!("script played");
            let _ = timer(
                self.timer,
                TimerRequest::OneShot { ms: 1_000_000_000 },
                None,
            );
        }
    }
}
