//! The LogStream session: a subscriber's view of the lines a `log_tee`
//! passes on to the serial console.
//!
//! The tee keeps each subscriber's lines in a [`LineRing`] of at most
//! [`RING_BYTES`] bytes; when it is full the oldest lines go and are
//! counted, so a subscriber that never reads costs the tee a fixed amount
//! and never slows the Log path. The subscriber fetches lines with
//! [`LogStreamRequest::Next`] when its notification says some wait.

use crate::SessionError;
use alloc::collections::VecDeque;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "LogStream";

/// Bytes of text one subscriber's ring holds.
pub const RING_BYTES: usize = 4096;

/// Bytes of text one reply carries at most (well inside one payload).
pub const REPLY_BYTES: usize = 2048;

/// A LogStream session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStreamRequest {
    /// Signal the notification that comes with this message when lines wait.
    SetNotification,
    /// The waiting lines (up to [`REPLY_BYTES`]).
    Next,
}

/// A LogStream session's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStreamReply {
    /// Done.
    Done,
    /// Lines, each ending in '\n', and how many were dropped before them.
    Lines {
        /// The text.
        text: String,
        /// Lines the ring dropped since the last reply.
        dropped: u32,
    },
    /// Refused.
    Error(SessionError),
}

/// A bounded queue of lines.
#[derive(Clone, Debug, Default)]
pub struct LineRing {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: u32,
}

impl LineRing {
    /// Empty.
    pub const fn new() -> Self {
        LineRing {
            lines: VecDeque::new(),
            bytes: 0,
            dropped: 0,
        }
    }

    /// Appends `label: text` (cut to fit the ring), dropping the oldest
    /// lines until it fits.
    pub fn push(&mut self, label: &str, text: &str) {
        let mut line = String::new();
        let wanted = label.len() + 2 + text.len() + 1;
        if line.try_reserve(wanted.min(RING_BYTES)).is_err() {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        for piece in [label, ": ", text.trim_end_matches('\n')] {
            for character in piece.chars() {
                if line.len() + character.len_utf8() >= RING_BYTES.min(REPLY_BYTES) {
                    break;
                }
                line.push(character);
            }
        }
        line.push('\n');
        while self.bytes + line.len() > RING_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped = self.dropped.saturating_add(1);
        }
        if self.lines.try_reserve(1).is_err() {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.bytes += line.len();
        self.lines.push_back(line);
    }

    /// Takes whole lines up to [`REPLY_BYTES`], and the drop count.
    pub fn take(&mut self) -> (String, u32) {
        let mut text = String::new();
        while let Some(line) = self.lines.front() {
            if text.len() + line.len() > REPLY_BYTES {
                break;
            }
            if text.try_reserve(line.len()).is_err() {
                break;
            }
            text.push_str(line);
            self.bytes -= line.len();
            self.lines.pop_front();
        }
        (text, core::mem::take(&mut self.dropped))
    }

    /// True when no line waits.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    #[test]
    fn lines_come_out_in_order_with_their_labels() {
        let mut ring = LineRing::new();
        ring.push("hello", "Hello #1\n");
        ring.push("timer", "tick");
        assert_eq!(ring.take(), ("hello: Hello #1\ntimer: tick\n".into(), 0));
        assert!(ring.is_empty());
    }

    #[test]
    fn a_reader_that_never_reads_costs_a_bounded_ring() {
        let mut ring = LineRing::new();
        for _ in 0..10_000 {
            ring.push("spam", "0123456789012345678901234567890123456789");
        }
        assert!(ring.bytes <= RING_BYTES);
        let (text, dropped) = ring.take();
        assert!(text.len() <= REPLY_BYTES);
        assert!(dropped > 9_000);
        // One enormous line is cut, never refused or grown past the ring.
        let huge = "x".repeat(100_000);
        ring.push("big", &huge);
        assert!(ring.bytes <= RING_BYTES);
    }

    #[test]
    fn a_full_reply_fits_one_payload() {
        let mut ring = LineRing::new();
        for _ in 0..200 {
            ring.push("label", "é line with two-byte characters ééé");
        }
        let (text, dropped) = ring.take();
        let reply = LogStreamReply::Lines { text, dropped };
        assert!(encode(&reply, &mut [0u8; arbor::abi::PAYLOAD_MAX]).is_ok());
    }
}
