//! virtio_input: the driver for QEMU's `virtio-keyboard-pci` and
//! `virtio-tablet-pci`, an Input session of typed events.
//!
//! It brings its Platform session's one device up with virtio-drivers
//! through `arbor-virtio` and turns the raw evdev triples the device
//! delivers into [`Event`]s with [`EvdevDecoder`] (absolute axes scaled to
//! the configured screen); triples the decoder refuses are counted and
//! dropped, never guessed at. Every session has its own bounded
//! [`EventQueue`]: a client that never reads costs the driver at most
//! `QUEUE_CAPACITY` events.
//!
//! One driver owns one device (arbor-virtio's Hal serves one device per
//! component), and the compositor reads one Input session; so with
//! `merge: true` the driver also opens an Input session of its own (routed
//! to the other device's driver) and forwards its events. A keyboard
//! driver merging a tablet driver gives the compositor both.
//!
//! Its Hal ([`hal`]) bounces the 8-byte event buffers through 64-byte
//! slots of one DMA page instead of a pool page each.
//!
//! The device is polled on a periodic timer (`poll_ms`), because the
//! server loop waits on its endpoint's notification and the device's
//! interrupt signals another one; each poll reads the interrupt status
//! (deasserting the shared line) and acknowledges it.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod hal;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use arbor::abi::CapSlot;
use arbor::slots;
use arbor::vspace;
use arbor_sessions::client::{self, call, open_session};
use arbor_sessions::input::{
    self, BATCH_MAX, EvdevDecoder, Event, InputReply, InputRequest, Listener,
};
use arbor_sessions::platform::{BUS_MASTER, Platform, SESSION_RAM};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{TimerReply, TimerRequest, name};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{Interface, SessionError, env, log};
use arbor_virtio::virtio_drivers::device::input::VirtIOInput;
use arbor_virtio::virtio_drivers::transport::pci::PciTransport;
use arbor_virtio::{POOL_PAGES, VirtioDevice};
use hal::InputHal;
use serde::Deserialize;

arbor::entry!(run);

const PAGE: u64 = 4096;
/// PCI command bit: memory decoding.
const MEMORY: u16 = 0x2;
/// Server notification bits: the poll timer and the merged session.
const TICK_BIT: u64 = 1;
const MERGED_BIT: u64 = 2;
/// What this driver donates for its merged Input session.
const INPUT_SESSION_RAM: u64 = 8192;

/// The config ROM.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The screen the tablet's axes are scaled to.
    width: u32,
    height: u32,
    /// Milliseconds between polls of the device.
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
    /// Also forward the events of an Input session of its own.
    #[serde(default)]
    merge: bool,
}

fn default_poll_ms() -> u64 {
    10
}

type Device = VirtIOInput<InputHal, PciTransport>;

fn run(_argument: u64) {
    match start() {
        Ok(error) => log!("stopped: {error}"),
        Err(error) => log!("failed: {error}"),
    }
    client::exit(1);
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

fn start() -> Result<SessionError, String> {
    let config = env::config::<Config>().map_err(|e| format!("bad config: {e}"))?;
    log!("starting{}", if config.merge { " (merging)" } else { "" });
    let platform: &'static Platform = Box::leak(Box::new(
        Platform::open("", SESSION_RAM + (u64::from(POOL_PAGES) + 2) * PAGE)
            .map_err(|e| format!("Platform session: {e}"))?,
    ));
    let (device, mut root) =
        VirtioDevice::open(platform, 0).map_err(|e| format!("opening the device: {e}"))?;
    platform
        .set_command(0, MEMORY | BUS_MASTER)
        .map_err(|e| format!("command register: {e}"))?;
    // One DMA page of 64-byte bounce slots for the event buffers.
    let (bounce, phys, _) = platform
        .dma(PAGE)
        .map_err(|e| format!("bounce page: {e}"))?;
    let bounce = vspace::map_pixels(bounce, PAGE / 4).map_err(|e| format!("mapping: {e}"))?;
    hal::set_bounce_page(phys, bounce.as_mut_ptr() as u64);
    let transport = PciTransport::new::<InputHal, _>(&mut root, device.function)
        .map_err(|e| format!("virtio transport: {e}"))?;
    let mut input: Device =
        VirtIOInput::new(transport).map_err(|e| format!("virtio-input: {e}"))?;
    let device_name: String = input
        .name()
        .unwrap_or_else(|_| String::from("unnamed"))
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    let server = Server::new().map_err(|e| format!("no server endpoint: {e}"))?;
    let tick = server
        .signal_cap(TICK_BIT)
        .map_err(|e| format!("tick capability: {e}"))?;
    let timer_session = open_session(name::TIMER, "", &(), client::TIMER_SESSION_RAM, None)
        .map_err(|e| format!("Timer session: {e}"))?;
    timer(timer_session.cap, TimerRequest::SetNotification, Some(tick))
        .map_err(|e| format!("timer notification: {e}"))?;
    slots::release(tick);
    timer(
        timer_session.cap,
        TimerRequest::Periodic {
            ms: config.poll_ms.max(1),
        },
        None,
    )
    .map_err(|e| format!("periodic timer: {e}"))?;
    let merged = if config.merge {
        let session = open_session(input::SERVICE, "", &(), INPUT_SESSION_RAM, None)
            .map_err(|e| format!("merged Input session: {e}"))?;
        let signal = server
            .signal_cap(MERGED_BIT)
            .map_err(|e| format!("merge capability: {e}"))?;
        let set = call::<_, InputReply>(
            session.cap,
            Interface::Session,
            &InputRequest::SetNotification,
            Some(signal),
            None,
        );
        slots::release(signal);
        match set {
            Ok((InputReply::Done, _)) => {}
            Ok((reply, _)) => return Err(format!("merged Input session: {reply:?}")),
            Err(error) => return Err(format!("merged Input session: {error}")),
        }
        Some(session.cap)
    } else {
        None
    };
    log!(
        "\"{device_name}\" on line {}{}",
        device.line,
        if merged.is_some() {
            ", merging another Input session"
        } else {
            ""
        }
    );
    Ok(server.serve(
        &[input::SERVICE],
        Driver {
            input,
            device,
            decoder: EvdevDecoder::new(config.width, config.height),
            merged,
            refused: 0,
        },
    ))
}

/// The device, its decoder and the merged session.
struct Driver {
    input: Device,
    device: VirtioDevice,
    decoder: EvdevDecoder,
    merged: Option<CapSlot>,
    /// Triples the decoder refused.
    refused: u64,
}

impl Service for Driver {
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

    fn opened(&mut self, session: &Entry<Listener>) {
        log!("session for \"{}\"", session.label);
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
        let mut events = alloc::vec::Vec::new();
        if bits & TICK_BIT != 0 {
            let _ = self.input.ack_interrupt();
            let _ = self.device.acknowledge();
            while let Some(raw) = self.input.pop_pending_event() {
                match self.decoder.feed(raw.event_type, raw.code, raw.value) {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => {}
                    Err(error) => {
                        self.refused += 1;
                        if self.refused <= 4 {
                            log!(
                                "refused evdev ({}, {}, {}): {error:?}",
                                raw.event_type,
                                raw.code,
                                raw.value
                            );
                        }
                    }
                }
            }
        }
        if bits & MERGED_BIT != 0
            && let Some(merged) = self.merged
        {
            let request = InputRequest::Events {
                max: BATCH_MAX as u16,
            };
            // Until the other queue is empty (it holds at most
            // QUEUE_CAPACITY events, so a few batches).
            for _ in 0..input::QUEUE_CAPACITY.div_ceil(BATCH_MAX) {
                match call::<_, InputReply>(merged, Interface::Session, &request, None, None) {
                    Ok((InputReply::Events(batch), _)) if !batch.events.is_empty() => {
                        events.extend(batch.events);
                    }
                    _ => break,
                }
            }
        }
        if events.is_empty() {
            return;
        }
        for entry in sessions.iter_mut() {
            let events = events.iter().copied();
            entry
                .state
                .deliver(events.filter(|event| !matches!(event, Event::Focus(_))));
        }
    }
}
