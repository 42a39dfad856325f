//! What every component below init needs from its surroundings: a log
//! ([`log!`](crate::log)) through a Log session opened on first use, its
//! configuration ([`config`]) from the Rom "config", and a panic path that
//! reports the message through that Log session before the thread faults
//! (children of init have no console capability).
//!
//! Logging never fails the component and never allocates: text is formatted
//! into a fixed line buffer, over-long lines are broken into several lines,
//! and a Log session that cannot be had turns logging into a no-op.

use crate::SessionError;
use crate::client::{Log, Rom};
use arbor::sync::TryLock;
use core::fmt;
use serde::de::DeserializeOwned;

/// Bytes of one logged line, its newline included. Longer lines continue on
/// the next line; the Log server prefixes each with the session label.
pub const LINE_MAX: usize = 256;

/// Formats text into whole lines of at most [`LINE_MAX`] bytes, each ending
/// in `'\n'`, and hands each to a sink. A line is only ever cut between
/// characters, never inside one.
pub struct LineWriter<F: FnMut(&str)> {
    line: [u8; LINE_MAX],
    len: usize,
    sink: F,
}

impl<F: FnMut(&str)> LineWriter<F> {
    /// An empty writer that emits into `sink`.
    pub fn new(sink: F) -> Self {
        LineWriter {
            line: [0; LINE_MAX],
            len: 0,
            sink,
        }
    }

    /// Ends the current line and hands it to the sink.
    fn emit(&mut self) {
        self.line[self.len] = b'\n';
        // The buffer holds whole characters only (see `append`), so this
        // never fails; an empty line is the harmless fallback.
        let text = core::str::from_utf8(&self.line[..=self.len]).unwrap_or("\n");
        (self.sink)(text);
        self.len = 0;
    }

    /// Appends text without newlines, breaking the line when it is full.
    fn append(&mut self, mut text: &str) {
        // One byte of every line is kept for its newline.
        const ROOM: usize = LINE_MAX - 1;
        while !text.is_empty() {
            if self.len == ROOM {
                self.emit();
            }
            let mut take = text.len().min(ROOM - self.len);
            while !text.is_char_boundary(take) {
                take -= 1;
            }
            if take == 0 {
                // The next character does not fit what is left of this line.
                self.emit();
                continue;
            }
            let (head, tail) = text.split_at(take);
            self.line[self.len..self.len + take].copy_from_slice(head.as_bytes());
            self.len += take;
            text = tail;
        }
    }

    /// Emits what is left as a last line (nothing if the text ended in a newline).
    pub fn finish(&mut self) {
        if self.len > 0 {
            self.emit();
        }
    }
}

impl<F: FnMut(&str)> fmt::Write for LineWriter<F> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut pieces = text.split('\n');
        if let Some(first) = pieces.next() {
            self.append(first);
        }
        for piece in pieces {
            self.emit();
            self.append(piece);
        }
        Ok(())
    }
}

/// Formats `args` into lines for `sink`; `args` that format to nothing give
/// one empty line, so that `log!("")` is visible.
pub fn format_lines(args: fmt::Arguments<'_>, sink: impl FnMut(&str)) {
    let mut emitted = false;
    let mut sink = sink;
    {
        let mut writer = LineWriter::new(|line: &str| {
            emitted = true;
            sink(line);
        });
        // Writing into a LineWriter cannot fail; a Display impl that returns
        // an error merely ends the text early.
        let _ = fmt::write(&mut writer, args);
        writer.finish();
    }
    if !emitted {
        sink("\n");
    }
}

/// The component's Log session, opened on first use.
enum LogState {
    /// Not asked for yet.
    Unopened,
    /// Open.
    Open(Log),
    /// The parent refused; logging is a no-op from now on.
    Unavailable,
}

static LOG: TryLock<LogState> = TryLock::new(LogState::Unopened);

/// Formats `args` to the component's Log session, one Log message per line.
/// Opens the Log session [`log!`](crate::log) writes to, if it is not open
/// yet (a component that wants its first line to appear without delay).
pub fn open_log() {
    if let Some(mut state) = LOG.try_lock() {
        open_log_into(&mut state);
    }
}

fn open_log_into(state: &mut LogState) {
    if let LogState::Unopened = *state {
        *state = match Log::open("") {
            Ok(log) => LogState::Open(log),
            Err(_) => LogState::Unavailable,
        };
    }
}

/// Used by [`log!`](crate::log). Dropped silently when there is no Log
/// session or when called from inside itself (a panic while logging).
pub fn log_args(args: fmt::Arguments<'_>) {
    install_panic_reporter();
    let Some(mut state) = LOG.try_lock() else {
        return;
    };
    open_log_into(&mut state);
    if let LogState::Open(log) = &*state {
        // A refused write cannot be reported anywhere better than the log.
        format_lines(args, |line| {
            let _ = log.write(line);
        });
    }
}

/// Logs a line through the component's Log session (a newline is added).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::env::log_args(format_args!($($arg)*)) };
}

fn report_panic(info: &core::panic::PanicInfo<'_>) {
    log_args(format_args!("panic: {info}"));
}

/// Makes panics report their message through the Log session (opening it
/// if need be) before the thread faults. [`log_args`] and [`config`] call
/// this, so a component that logs or reads its config has it installed.
pub fn install_panic_reporter() {
    arbor::set_panic_reporter(report_panic);
}

/// Why a component's configuration could not be had.
#[derive(Debug)]
pub enum ConfigError {
    /// The Rom "config" could not be opened (no config given, or not routed).
    Rom(SessionError),
    /// The config is not UTF-8 text.
    NotText,
    /// The config is not what the component expects (with line and column).
    Invalid(ron::error::SpannedError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rom(error) => write!(f, "config: cannot open the Rom \"config\": {error}"),
            Self::NotText => write!(f, "config: not UTF-8 text"),
            Self::Invalid(error) => write!(f, "config:{error}"),
        }
    }
}

/// Decodes a config ROM's bytes as RON. The module may be padded with zero
/// bytes to its dataspace's size; they are not part of the text.
pub fn parse_config<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = core::str::from_utf8(&bytes[..end]).map_err(|_| ConfigError::NotText)?;
    ron::from_str(text).map_err(ConfigError::Invalid)
}

/// The component's configuration: the Rom "config" decoded as RON into `T`.
/// Give `T` `#[serde(deny_unknown_fields)]` so that a typo is an error.
pub fn config<T: DeserializeOwned>() -> Result<T, ConfigError> {
    install_panic_reporter();
    // The session stays open: its dataspace is mapped for the component's life.
    let rom = Rom::open("config").map_err(ConfigError::Rom)?;
    parse_config(rom.bytes)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use serde::Deserialize;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn lines(args: fmt::Arguments<'_>) -> Vec<String> {
        let mut out = Vec::new();
        format_lines(args, |line| out.push(line.to_string()));
        out
    }

    #[test]
    fn a_short_line_is_one_message_with_a_newline() {
        assert_eq!(lines(format_args!("Hello #{}", 1)), ["Hello #1\n"]);
    }

    #[test]
    fn embedded_newlines_make_separate_lines_and_empty_text_one_empty_line() {
        assert_eq!(lines(format_args!("a\nb\n")), ["a\n", "b\n"]);
        assert_eq!(lines(format_args!("a\n\nb")), ["a\n", "\n", "b\n"]);
        assert_eq!(lines(format_args!("")), ["\n"]);
    }

    #[test]
    fn long_lines_are_broken_never_truncated() {
        let long = "x".repeat(3 * LINE_MAX);
        let out = lines(format_args!("{long}"));
        assert!(out.iter().all(|l| l.len() <= LINE_MAX && l.ends_with('\n')));
        assert_eq!(out.concat().replace('\n', ""), long);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn lines_break_between_characters_only() {
        // Three-byte characters never line up with the line's 255 bytes of room.
        let wide = "€".repeat(LINE_MAX);
        let out = lines(format_args!("{wide}"));
        assert!(out.iter().all(|l| l.len() <= LINE_MAX));
        assert_eq!(out.concat().replace('\n', ""), wide);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Greeting {
        greeting: String,
        count: u32,
    }

    #[test]
    fn config_decodes_ron_and_ignores_padding() {
        let mut rom = b"(greeting: \"hi\", count: 3)".to_vec();
        rom.resize(4096, 0);
        let config: Greeting = parse_config(&rom).unwrap();
        assert_eq!(
            config,
            Greeting {
                greeting: "hi".to_string(),
                count: 3
            }
        );
    }

    #[test]
    fn bad_config_names_line_and_column() {
        let error = parse_config::<Greeting>(b"(greeting: \"hi\",\n cuont: 3)").unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("config:2:"), "{message}");
        assert!(message.contains("cuont"), "{message}");
        assert!(matches!(
            parse_config::<Greeting>(&[0xFF, 0xFE]),
            Err(ConfigError::NotText)
        ));
        assert!(parse_config::<Greeting>(&[]).is_err());
    }
}
