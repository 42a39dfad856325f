//! gui_client: a test client of the compositor.
//!
//! Honest mode: asks for a buffer, fills it with pattern `seed`, shows it
//! in one view at the configured position, then redraws it `updates` times
//! with the next seeds, one refresh each `interval_ms`, says how many
//! refreshes the compositor deferred, and stays (its views with it). The last picture is pattern
//! `seed + updates`, whose screen checksums the scenarios expect.
//!
//! Bench mode (`bench_gui.ron`): like honest mode, `updates` refreshes of
//! the whole view, then `updates` of its top-left 64x48 corner, without
//! redrawing (the figures are the compositor's and the driver's).
//!
//! Hostile mode: after `delay_ms`, tries in turn to refresh far outside its
//! buffer, to ask for a buffer beyond its donation, to place a view over
//! another client's title strip, to read the screen back (a request the
//! interface does not have), to flood garbage requests and refreshes (`flood` of each, then
//! refreshes for `flood_ms`); it logs what it was told, then faults, so
//! init kills it.
#![cfg_attr(target_os = "none", no_std, no_main)]

use alloc::string::String;
use arbor::abi::CapSlot;
use arbor::abi::info;
use arbor::{slots, sys};
use arbor_sessions::client::{self, Timer, call};
use arbor_sessions::framebuffer::Rect;
use arbor_sessions::gui::{GuiReply, GuiRequest, Window};
use arbor_sessions::{Interface, SessionError, env, log};
use serde::Deserialize;

extern crate alloc;

arbor::entry!(run);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "honest")]
    mode: String,
    seed: u32,
    width: u32,
    height: u32,
    x: i32,
    y: i32,
    #[serde(default)]
    updates: u32,
    #[serde(default = "default_interval")]
    interval_ms: u64,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default = "default_ram")]
    ram: u64,
    #[serde(default)]
    flood: u32,
    /// Hostile mode: after the counted floods, keep flooding refreshes for
    /// this long (so a scenario can take screenshots meanwhile).
    #[serde(default)]
    flood_ms: u64,
}

fn honest() -> String {
    String::from("honest")
}

fn default_interval() -> u64 {
    30
}

fn default_ram() -> u64 {
    32 * 1024
}

fn run(_argument: u64) {
    let config = match env::config::<Config>() {
        Ok(config) => config,
        Err(error) => {
            log!("gui_client: {error}");
            return client::exit(1);
        }
    };
    let result = match config.mode.as_str() {
        "hostile" => hostile(&config),
        "bench" => bench(&config),
        _ => painter(&config),
    };
    if let Err(error) = result {
        log!("gui_client: stopped: {error}");
        client::exit(1);
    }
    client::exit(0);
}

fn request(
    session: CapSlot,
    request: &GuiRequest,
    receive: Option<CapSlot>,
) -> Result<GuiReply, SessionError> {
    match call::<_, GuiReply>(session, Interface::Session, request, None, receive)? {
        (GuiReply::Error(error), _) => Err(error),
        (reply, _) => Ok(reply),
    }
}

/// A window (`gui::Window`) with pattern `seed` drawn and shown.
fn open_window(config: &Config) -> Result<Window, SessionError> {
    let window = Window::open(config.width, config.height, config.x, config.y, config.ram)?;
    gui_client::fill(window.pixels, config.width, config.seed);
    request(
        window.session,
        &GuiRequest::Refresh {
            rect: Rect::new(0, 0, config.width, config.height),
        },
        None,
    )?;
    log!(
        "gui_client: pattern {} in a {}x{} view at ({}, {})",
        config.seed,
        config.width,
        config.height,
        config.x,
        config.y
    );
    Ok(window)
}

fn painter(config: &Config) -> Result<(), SessionError> {
    let timer = Timer::open("")?;
    let window = open_window(config)?;
    let whole = Rect::new(0, 0, config.width, config.height);
    let mut refused = 0u32;
    for update in 1..=config.updates {
        timer.sleep(config.interval_ms)?;
        gui_client::fill(
            window.pixels,
            config.width,
            config.seed.wrapping_add(update),
        );
        // A refusal (the budget of this frame is spent) is retried next frame.
        while let Err(error) = request(window.session, &GuiRequest::Refresh { rect: whole }, None) {
            if error != SessionError::Unavailable {
                return Err(error);
            }
            refused += 1;
            timer.sleep(config.interval_ms)?;
        }
    }
    log!(
        "gui_client: {} updates shown, last pattern {}, {refused} refreshes deferred",
        config.updates,
        config.seed.wrapping_add(config.updates)
    );
    // Stay, so the last picture stays on screen for the checks.
    loop {
        timer.sleep(60_000)?;
    }
}

/// Refreshes `rect` of `window` after `interval_ms`, retrying (next
/// interval) while the frame's budget is spent; returns the deferrals.
fn refresh_paced(
    timer: &Timer,
    window: &Window,
    rect: Rect,
    interval_ms: u64,
) -> Result<u32, SessionError> {
    let mut deferred = 0;
    timer.sleep(interval_ms)?;
    while let Err(error) = request(window.session, &GuiRequest::Refresh { rect }, None) {
        if error != SessionError::Unavailable {
            return Err(error);
        }
        deferred += 1;
        timer.sleep(interval_ms)?;
    }
    Ok(deferred)
}

fn bench(config: &Config) -> Result<(), SessionError> {
    let timer = Timer::open("")?;
    let window = open_window(config)?;
    let whole = Rect::new(0, 0, config.width, config.height);
    let corner = Rect::new(0, 0, config.width.min(64), config.height.min(48));
    let mut deferred = 0;
    for _ in 0..config.updates {
        deferred += refresh_paced(&timer, &window, whole, config.interval_ms)?;
    }
    log!(
        "gui_client: bench: {} whole-view refreshes ({deferred} deferred)",
        config.updates
    );
    for _ in 0..config.updates {
        deferred += refresh_paced(&timer, &window, corner, config.interval_ms)?;
    }
    log!(
        "gui_client: bench: {} corner refreshes ({deferred} deferred in all)",
        config.updates
    );
    loop {
        timer.sleep(60_000)?;
    }
}

fn hostile(config: &Config) -> Result<(), SessionError> {
    let timer = Timer::open("")?;
    timer.sleep(config.delay_ms)?;
    let window = open_window(config)?;
    let session = window.session;

    let outside = Rect::new(-1000, -1000, 8000, 8000);
    let result = request(session, &GuiRequest::Refresh { rect: outside }, None);
    log!(
        "gui_client: refresh far outside the buffer: {}",
        outcome(&result)
    );

    let huge = request(
        session,
        &GuiRequest::Buffer {
            width: 4096,
            height: 4096,
        },
        Some(slots::allocate().map_err(SessionError::from)?),
    );
    log!("gui_client: a 4096x4096 buffer: {}", outcome(&huge));

    // A second view over the painter's strip (the config's x/y put the
    // first one there already); both are clipped under the strip.
    let result = request(
        session,
        &GuiRequest::Place {
            view: window.view,
            rect: Rect::new(config.x, config.y, config.width, config.height),
        },
        None,
    );
    log!(
        "gui_client: a view over another client's strip: {}",
        outcome(&result)
    );

    // Reading the screen back: the Gui interface has no such request, so
    // the closest a client can come is a request number that does not exist.
    let result = call::<_, GuiReply>(session, Interface::Session, &200u32, None, None);
    let answer = match result {
        Ok((GuiReply::Error(error), _)) => Err(error),
        Ok(_) => Ok(GuiReply::Done),
        Err(error) => Err(error),
    };
    log!("gui_client: reading the screen back: {}", outcome(&answer));

    // Garbage in a loop: refused each time; the compositor logs a few a
    // frame and counts the rest, so its log (and everyone's) stays usable.
    let mut refused = 0u32;
    for _ in 0..config.flood {
        if !matches!(
            call::<_, GuiReply>(session, Interface::Session, &200u32, None, None),
            Ok((GuiReply::Done, _))
        ) {
            refused += 1;
        }
    }
    log!(
        "gui_client: sent {} garbage requests, {refused} refused",
        config.flood
    );

    let whole = Rect::new(0, 0, config.width, config.height);
    let mut refused = 0u32;
    for _ in 0..config.flood {
        if request(session, &GuiRequest::Refresh { rect: whole }, None).is_err() {
            refused += 1;
        }
    }
    log!(
        "gui_client: flooded {} refreshes, {refused} refused",
        config.flood
    );
    if config.flood_ms > 0 {
        log!("gui_client: flooding refreshes for {} ms", config.flood_ms);
        let per_ms = sys::info(info::TSC_PER_MS, 0).map_or(1, |r| r.0.max(1));
        let until = tsc().saturating_add(config.flood_ms.saturating_mul(per_ms));
        let (mut sent, mut refused) = (0u64, 0u64);
        while tsc() < until {
            sent += 1;
            if request(session, &GuiRequest::Refresh { rect: whole }, None).is_err() {
                refused += 1;
            }
        }
        log!(
            "gui_client: flooded refreshes for {} ms: {sent} sent, {refused} refused",
            config.flood_ms
        );
    }
    log!("gui_client: faulting now");
    // SAFETY: none needed for soundness: page 0 is never mapped, so the
    // read faults before a value exists and this thread never resumes.
    let _ = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
    Ok(())
}

/// The time stamp counter.
fn tsc() -> u64 {
    // SAFETY: rdtsc reads a counter and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn outcome(result: &Result<GuiReply, SessionError>) -> String {
    match result {
        Ok(_) => String::from("accepted"),
        Err(error) => alloc::format!("refused ({error})"),
    }
}
