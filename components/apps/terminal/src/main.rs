//! terminal: a text terminal on a Gui session.
//!
//! It shows its config's greeting and a prompt, echoes what is typed while
//! it has focus, and on enter prints the line back (`echo: LINE`) and logs
//! it. Input arrives as Gui events (the compositor routes keys only to the
//! focused client); the grid, the line editor and the drawing are the
//! host-tested library (`terminal::grid`, `keys`, `render`).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
use arbor::abi::{CapSlot, ObjectKind, slot};
use arbor::{slots, sys};
use arbor_sessions::client::{self, call, open_session};
use arbor_sessions::framebuffer::Rect;
use arbor_sessions::gui::{self, GuiReply, GuiRequest, Window};
use arbor_sessions::input::{BATCH_MAX, Event};
use arbor_sessions::log_stream::{self, LogStreamReply, LogStreamRequest};
use arbor_sessions::{Interface, SessionError, env, log};
use compositor::font::GLYPH_SIZE;
use serde::Deserialize;
use terminal::grid::Grid;
use terminal::keys::{Edit, LineEditor};
use terminal::render;

arbor::entry!(run);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    columns: u16,
    rows: u16,
    x: i32,
    y: i32,
    #[serde(default)]
    greeting: String,
    #[serde(default = "default_prompt")]
    prompt: String,
    /// Show the lines of a LogStream session (from a log_tee).
    #[serde(default)]
    log: bool,
}

fn default_prompt() -> String {
    String::from("> ")
}

fn run(_argument: u64) {
    let config = match env::config::<Config>() {
        Ok(config) => config,
        Err(error) => {
            log!("terminal: {error}");
            return client::exit(1);
        }
    };
    if let Err(error) = serve(&config) {
        log!("terminal: stopped: {error}");
        client::exit(1);
    }
}

fn serve(config: &Config) -> Result<(), SessionError> {
    let mut grid = Grid::new(
        config.columns.clamp(1, 200).into(),
        config.rows.clamp(1, 100).into(),
    );
    let (width, height) = render::buffer_size(&grid);
    let ram = gui::session_ram(width, height).ok_or(SessionError::BadRequest)?;
    let mut window = Window::open(width, height, config.x, config.y, ram)?;
    let notification = slots::allocate().map_err(SessionError::from)?;
    sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)
        .map_err(SessionError::from)?;
    window.request(&GuiRequest::SetNotification, Some(notification))?;

    let log = if config.log {
        let stream = open_session(
            log_stream::SERVICE,
            "",
            &(),
            log_stream::RING_BYTES as u64 * 2 + 4096,
            None,
        )?
        .cap;
        match call::<_, LogStreamReply>(
            stream,
            Interface::Session,
            &LogStreamRequest::SetNotification,
            Some(notification),
            None,
        )? {
            (LogStreamReply::Done, _) => Some(stream),
            (LogStreamReply::Error(error), _) => return Err(error),
            _ => return Err(SessionError::BadRequest),
        }
    } else {
        None
    };

    grid.write(&config.greeting);
    grid.put('\n');
    grid.write(&config.prompt);
    redraw(&mut grid, &mut window)?;
    log!(
        "terminal: {}x{} characters at ({}, {})",
        grid.columns(),
        grid.rows(),
        config.x,
        config.y
    );

    let mut editor = LineEditor::new();
    loop {
        // Events are signalled; the timeout only guards against a lost signal.
        let _ = sys::wait_timeout(notification, 500);
        let batch = match window.request(
            &GuiRequest::Events {
                max: BATCH_MAX as u16,
            },
            None,
        )? {
            GuiReply::Events(batch) => batch,
            _ => return Err(SessionError::BadRequest),
        };
        if batch.dropped > 0 {
            log!("terminal: {} input events were dropped", batch.dropped);
        }
        for event in batch.events {
            match event {
                Event::Focus(focused) => log!(
                    "terminal: focus {}",
                    if focused { "gained" } else { "lost" }
                ),
                Event::Press(code) => log!("terminal: key {}", code.0),
                _ => {}
            }
            match editor.event(event) {
                Edit::None => {}
                Edit::Typed(character) => grid.put(character),
                Edit::Erased => grid.backspace(),
                Edit::Line(line) => {
                    log!("terminal: line \"{line}\"");
                    grid.put('\n');
                    grid.write("echo: ");
                    grid.write(&line);
                    grid.put('\n');
                    grid.write(&config.prompt);
                }
            }
        }
        if let Some(stream) = log {
            show_log(stream, &mut grid)?;
        }
        redraw(&mut grid, &mut window)?;
    }
}

/// Writes the waiting log lines above the prompt line.
fn show_log(stream: CapSlot, grid: &mut Grid) -> Result<(), SessionError> {
    let (text, dropped) = match call::<_, LogStreamReply>(
        stream,
        Interface::Session,
        &LogStreamRequest::Next,
        None,
        None,
    )? {
        (LogStreamReply::Lines { text, dropped }, _) => (text, dropped),
        (LogStreamReply::Error(error), _) => return Err(error),
        _ => return Err(SessionError::BadRequest),
    };
    if dropped > 0 {
        grid.write(&alloc::format!("[{dropped} lines dropped]\n"));
    }
    for line in text.lines() {
        log!("terminal: shows \"{line}\"");
        grid.write(line);
        grid.put('\n');
    }
    Ok(())
}

/// Draws the rows that changed and refreshes them (retrying a refresh the
/// compositor deferred to its next frame).
fn redraw(grid: &mut Grid, window: &mut Window) -> Result<(), SessionError> {
    let (rows, _) = grid.take_dirty();
    let (Some(&first), Some(&last)) = (rows.first(), rows.last()) else {
        return Ok(());
    };
    for &row in &rows {
        render::draw_row(grid, window.pixels, row);
    }
    let top = first as u32 * GLYPH_SIZE;
    let rect = Rect::new(
        0,
        top as i32,
        window.width,
        (last - first + 1) as u32 * GLYPH_SIZE,
    );
    window.refresh(rect)
}
