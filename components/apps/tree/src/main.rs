//! tree: the live component tree with quotas, from init's `InitState`
//! report (`arbor_sessions::init_state`; init grants it only to a child
//! whose routes send `InitState` `to: Init`).
//!
//! On a Gui session (the default) it draws the report's text in a view and
//! redraws it once a second, and at once when the report's version says
//! init started, stopped or restarted a child. With `log: true` it prints
//! the report to its Log `prints` times, `period_ms` apart, and exits.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use arbor_sessions::client;
use arbor_sessions::framebuffer::Rect;
use arbor_sessions::gui::{self, Window};
use arbor_sessions::init_state::{self, InitState};
use arbor_sessions::{SessionError, env, log};
use serde::Deserialize;

arbor::entry!(run);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Print to the log instead of drawing.
    #[serde(default)]
    log: bool,
    /// Reports printed in log mode.
    #[serde(default = "default_prints")]
    prints: u32,
    /// Milliseconds between full redraws (or prints).
    #[serde(default = "default_period")]
    period_ms: u64,
    /// The view's size in characters and its place.
    #[serde(default = "default_columns")]
    columns: u32,
    #[serde(default = "default_rows")]
    rows: u32,
    #[serde(default)]
    x: i32,
    #[serde(default)]
    y: i32,
}

fn default_prints() -> u32 {
    1
}

fn default_period() -> u64 {
    1000
}

fn default_columns() -> u32 {
    78
}

fn default_rows() -> u32 {
    16
}

/// How often the version is asked for between full redraws.
const VERSION_POLL_MS: u64 = 100;

fn run(_argument: u64) {
    let config = match env::config::<Config>() {
        Ok(config) => config,
        Err(error) => {
            log!("tree: {error}");
            return client::exit(1);
        }
    };
    let state = match InitState::open() {
        Ok(state) => state,
        Err(error) => {
            log!("tree: init's state report refused: {error}");
            return client::exit(1);
        }
    };
    let result = if config.log {
        print(&config, &state)
    } else {
        show(&config, &state)
    };
    match result {
        Ok(()) => client::exit(0),
        Err(error) => {
            log!("tree: stopped: {error}");
            client::exit(1);
        }
    }
}

/// Prints the report `prints` times, line by line.
fn print(config: &Config, state: &InitState) -> Result<(), SessionError> {
    for count in 1..=config.prints {
        if count > 1 {
            client::pause(config.period_ms);
        }
        let report = state.report()?;
        log!("tree: report {count} of {}", config.prints);
        for line in init_state::render(&report).lines() {
            log!("{line}");
        }
    }
    Ok(())
}

/// Draws the report in a view for good.
fn show(config: &Config, state: &InitState) -> Result<(), SessionError> {
    let (width, height) = tree::buffer_size(config.columns, config.rows);
    let ram = gui::session_ram(width, height).ok_or(SessionError::BadRequest)?;
    let window = Window::open(width, height, config.x, config.y, ram)?;
    log!(
        "tree: {}x{} characters at ({}, {})",
        config.columns,
        config.rows,
        config.x,
        config.y
    );
    let polls_per_redraw = config.period_ms.div_ceil(VERSION_POLL_MS).max(1);
    let mut shown_version = None;
    let mut polls = 0;
    loop {
        let version = state.version()?;
        if shown_version != Some(version) || polls >= polls_per_redraw {
            let report = state.report()?;
            let text = init_state::render(&report);
            tree::draw(window.pixels, width, &text);
            window.refresh(Rect::new(0, 0, width, height))?;
            if shown_version.is_none() {
                log!("tree: shows {} children", report.children.len());
            }
            shown_version = Some(version);
            polls = 0;
        }
        polls += 1;
        client::pause(VERSION_POLL_MS);
    }
}
