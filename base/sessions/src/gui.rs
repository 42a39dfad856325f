//! The Gui session: what a client of the compositor may do.
//!
//! A client asks for a pixel buffer ([`GuiRequest::Buffer`]): the
//! compositor allocates it from the RAM the client donated for the session
//! (refusing with `InsufficientQuota` when the donation does not cover it)
//! and hands back a writable dataspace that only this client and the
//! compositor map. The client creates views ([`GuiRequest::CreateView`]),
//! places them ([`GuiRequest::Place`]: where on screen, how large, stacked
//! on top), and names the rectangles of its buffer it changed
//! ([`GuiRequest::Refresh`]). It fetches the input events meant for it
//! ([`GuiRequest::Events`]) — only while it has focus, or pointer motion
//! over its own views.
//!
//! What a client cannot ask for, because no request exists: to draw on the
//! screen directly, to read the screen or another client's buffer, to move
//! the pointer, to draw or hide a title strip, to take focus.

use crate::SessionError;
use crate::framebuffer::{MAX_DIMENSION, Mode, Rect};
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "Gui";

/// Views one session may have.
pub const VIEWS_PER_SESSION: usize = 8;

/// A view, as named by the session that created it (numbers are per session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ViewId(pub u32);

/// A Gui session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuiRequest {
    /// The screen's mode (size of the area views are placed on).
    Mode,
    /// A `width` x `height` buffer (XRGB8888), replacing any earlier one;
    /// the reply carries its dataspace.
    Buffer {
        /// Pixels per row.
        width: u32,
        /// Rows.
        height: u32,
    },
    /// A new view, not yet visible (empty geometry).
    CreateView,
    /// Puts `view`'s content at `rect` (screen coordinates; the title strip
    /// goes above it) and on top of the stack.
    Place {
        /// Which view.
        view: ViewId,
        /// Where its content goes.
        rect: Rect,
    },
    /// Removes a view.
    DestroyView {
        /// Which view.
        view: ViewId,
    },
    /// The buffer changed inside `rect` (buffer coordinates, clipped).
    Refresh {
        /// Dirty rectangle.
        rect: Rect,
    },
    /// Signal the notification that comes with this message when events wait.
    SetNotification,
    /// Up to `max` waiting input events.
    Events {
        /// Most events wanted.
        max: u16,
    },
}

/// A Gui session's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuiReply {
    /// Done.
    Done,
    /// The screen mode.
    Mode(Mode),
    /// The message carries the buffer's dataspace, `size` bytes.
    Buffer {
        /// Bytes.
        size: u64,
    },
    /// The new view.
    View(ViewId),
    /// Input events.
    Events(crate::input::Batch),
    /// Refused.
    Error(SessionError),
}

/// Decodes a request from untrusted bytes, refusing sizes no screen or
/// buffer can have before anyone computes with them.
pub fn decode_request(bytes: &[u8]) -> Result<GuiRequest, SessionError> {
    let request: GuiRequest = crate::decode(bytes)?;
    let too_big = |width: u32, height: u32| width > MAX_DIMENSION || height > MAX_DIMENSION;
    match request {
        GuiRequest::Buffer { width, height }
            if width == 0 || height == 0 || too_big(width, height) =>
        {
            Err(SessionError::BadRequest)
        }
        GuiRequest::Place { rect, .. } | GuiRequest::Refresh { rect }
            if too_big(rect.width, rect.height) =>
        {
            Err(SessionError::BadRequest)
        }
        request => Ok(request),
    }
}

/// Bytes a `width` x `height` buffer costs (4 bytes a pixel, whole pages),
/// or `None` for an impossible size.
pub fn buffer_cost(width: u32, height: u32) -> Option<u64> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return None;
    }
    let bytes = u64::from(width) * u64::from(height) * 4;
    Some(bytes.div_ceil(4096) * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    #[test]
    fn requests_round_trip_and_impossible_sizes_are_refused() {
        let mut buffer = [0u8; 64];
        for request in [
            GuiRequest::Buffer {
                width: 320,
                height: 200,
            },
            GuiRequest::Place {
                view: ViewId(3),
                rect: Rect::new(-50, -50, 100, 100),
            },
            GuiRequest::Refresh {
                rect: Rect::new(0, 0, 8, 8),
            },
            GuiRequest::Events { max: 4 },
        ] {
            let len = encode(&request, &mut buffer).unwrap();
            assert_eq!(decode_request(&buffer[..len]), Ok(request));
        }
        for bad in [
            GuiRequest::Buffer {
                width: 0,
                height: 5,
            },
            GuiRequest::Buffer {
                width: MAX_DIMENSION + 1,
                height: 5,
            },
            GuiRequest::Place {
                view: ViewId(0),
                rect: Rect::new(0, 0, u32::MAX, 1),
            },
            GuiRequest::Refresh {
                rect: Rect::new(0, 0, 1, u32::MAX),
            },
        ] {
            let len = encode(&bad, &mut buffer).unwrap();
            assert_eq!(
                decode_request(&buffer[..len]),
                Err(SessionError::BadRequest)
            );
        }
    }

    #[test]
    fn buffer_cost_is_whole_pages_and_bounded() {
        assert_eq!(buffer_cost(1, 1), Some(4096));
        assert_eq!(buffer_cost(1024, 1), Some(4096));
        assert_eq!(buffer_cost(1025, 1), Some(8192));
        assert_eq!(buffer_cost(0, 1), None);
        assert_eq!(buffer_cost(MAX_DIMENSION + 1, 1), None);
        assert_eq!(
            buffer_cost(MAX_DIMENSION, MAX_DIMENSION),
            Some(4 * 8192 * 8192)
        );
    }

    #[test]
    fn fuzzed_requests_never_panic_and_stay_bounded() {
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..30_000 {
            let mut bytes = [0u8; 24];
            for byte in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            bytes[0] %= 9;
            let len = (state % 24) as usize;
            match decode_request(&bytes[..len]) {
                Ok(GuiRequest::Buffer { width, height }) => {
                    assert!(buffer_cost(width, height).is_some());
                }
                Ok(GuiRequest::Place { rect, .. } | GuiRequest::Refresh { rect }) => {
                    assert!(rect.width <= MAX_DIMENSION && rect.height <= MAX_DIMENSION);
                }
                _ => {}
            }
        }
    }
}
