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

use crate::framebuffer::{MAX_DIMENSION, Mode, Rect};
use crate::{Interface, SessionError, client};
use arbor::abi::CapSlot;
use arbor::guard::SlotGuard;
use arbor::vspace;
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

/// What a session costs the compositor before its buffer.
pub const SESSION_RAM: u64 = 8192;

/// What a client donates for a session with one `width` x `height`
/// buffer, or `None` for an impossible size.
pub fn session_ram(width: u32, height: u32) -> Option<u64> {
    buffer_cost(width, height).map(|cost| SESSION_RAM + cost)
}

/// A client's Gui session with one mapped buffer and one placed view:
/// what every drawing client starts with.
pub struct Window {
    /// The session.
    pub session: CapSlot,
    /// The buffer, `width` x `height` pixels, row by row.
    pub pixels: &'static mut [u32],
    /// The view showing the buffer.
    pub view: ViewId,
    /// The buffer's width in pixels.
    pub width: u32,
    /// The buffer's height in pixels.
    pub height: u32,
}

impl Window {
    /// Opens a session donating `ram` bytes, gets a `width` x `height`
    /// buffer, maps it, and places one view of that size at (`x`, `y`).
    pub fn open(width: u32, height: u32, x: i32, y: i32, ram: u64) -> Result<Self, SessionError> {
        let pixel_count = u64::from(width) * u64::from(height);
        let session = client::open_session(SERVICE, "", &(), ram, None)?.cap;
        let dataspace = SlotGuard::allocate()?;
        match Self::call(
            session,
            &GuiRequest::Buffer { width, height },
            None,
            Some(dataspace.slot()),
        )? {
            // The compositor's claim is checked before anything is mapped:
            // at least the whole pages such a buffer costs.
            GuiReply::Buffer { size }
                if buffer_cost(width, height).is_some_and(|cost| size >= cost) => {}
            _ => return Err(SessionError::BadRequest),
        }
        let pixels =
            vspace::map_pixels(dataspace.slot(), pixel_count).map_err(SessionError::from)?;
        // Mapped for the rest of the session's life.
        dataspace.keep();
        let view = match Self::call(session, &GuiRequest::CreateView, None, None)? {
            GuiReply::View(view) => view,
            _ => return Err(SessionError::BadRequest),
        };
        let rect = Rect::new(x, y, width, height);
        Self::call(session, &GuiRequest::Place { view, rect }, None, None)?;
        Ok(Window {
            session,
            pixels,
            view,
            width,
            height,
        })
    }

    /// Sends `request` on the session (with `send`, a capability for it);
    /// an error reply becomes the error.
    pub fn request(
        &self,
        request: &GuiRequest,
        send: Option<CapSlot>,
    ) -> Result<GuiReply, SessionError> {
        Self::call(self.session, request, send, None)
    }

    /// Refreshes `rect` of the buffer, asking again while the compositor
    /// defers it to its next frame (`Unavailable`: this client's share of
    /// the frame is used up).
    pub fn refresh(&self, rect: Rect) -> Result<(), SessionError> {
        loop {
            match self.request(&GuiRequest::Refresh { rect }, None) {
                Err(SessionError::Unavailable) => client::pause(20),
                other => return other.map(drop),
            }
        }
    }

    fn call(
        session: CapSlot,
        request: &GuiRequest,
        send: Option<CapSlot>,
        receive: Option<CapSlot>,
    ) -> Result<GuiReply, SessionError> {
        match client::call::<_, GuiReply>(session, Interface::Session, request, send, receive)? {
            (GuiReply::Error(error), _) => Err(error),
            (reply, _) => Ok(reply),
        }
    }
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
