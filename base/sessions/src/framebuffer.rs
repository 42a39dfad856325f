//! The Framebuffer session: a display's mode, one shared pixel buffer, and
//! refreshes of dirty rectangles.
//!
//! The provider (a display driver, or the `ram_fb` test driver) hands its
//! client — the compositor — one dataspace of `width * height` pixels in
//! the mode's format, row after row with no padding. The client draws into
//! it and names the rectangle it changed with [`FramebufferRequest::Refresh`];
//! the provider flushes only that rectangle. Rectangles are clipped to the
//! mode by the provider, never trusted: [`Rect::clipped_to`] is the one
//! clipping rule everyone uses.

use crate::SessionError;
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "Framebuffer";

/// The largest width or height any mode may have: keeps every pixel count
/// and byte size far inside `u64` and every coordinate inside `i32`.
pub const MAX_DIMENSION: u32 = 8192;

/// How one pixel is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PixelFormat {
    /// 32 bits, little-endian 0x00RRGGBB (virtio-gpu's B8G8R8X8 in memory).
    Xrgb8888,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub const fn bytes_per_pixel(self) -> u64 {
        match self {
            Self::Xrgb8888 => 4,
        }
    }
}

/// A display mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mode {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Pixel layout.
    pub format: PixelFormat,
}

impl Mode {
    /// A mode, or `BadRequest` if a side is zero or above [`MAX_DIMENSION`].
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Result<Self, SessionError> {
        let valid = |side: u32| (1..=MAX_DIMENSION).contains(&side);
        if !valid(width) || !valid(height) {
            return Err(SessionError::BadRequest);
        }
        Ok(Mode {
            width,
            height,
            format,
        })
    }

    /// Checks a mode that came from elsewhere (a reply, a config).
    pub fn checked(self) -> Result<Self, SessionError> {
        Mode::new(self.width, self.height, self.format)
    }

    /// Pixels in the buffer.
    pub const fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// Bytes of the pixel buffer.
    pub const fn buffer_bytes(&self) -> u64 {
        self.pixels() * self.format.bytes_per_pixel()
    }

    /// The whole screen as a rectangle.
    pub const fn bounds(&self) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        }
    }
}

/// An axis-aligned rectangle in pixels. `x`/`y` may be negative (a view
/// partly off screen); an empty rectangle has a zero side. All arithmetic
/// is done in `i64`, so no value a client sends can overflow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// A rectangle.
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// True when it covers no pixel.
    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Pixels covered.
    pub const fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// One past the right edge.
    pub const fn right(&self) -> i64 {
        self.x as i64 + self.width as i64
    }

    /// One past the bottom edge.
    pub const fn bottom(&self) -> i64 {
        self.y as i64 + self.height as i64
    }

    /// True when the pixel at (`x`, `y`) lies inside.
    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= i64::from(self.x) && x < self.right() && y >= i64::from(self.y) && y < self.bottom()
    }

    /// Builds a rectangle from edges, clamping it into the `i32`/`u32`
    /// range; empty when `right <= left` or `bottom <= top`.
    pub fn from_edges(left: i64, top: i64, right: i64, bottom: i64) -> Self {
        let clamp = |value: i64| value.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        let (left, top) = (clamp(left), clamp(top));
        let (right, bottom) = (clamp(right), clamp(bottom));
        if right <= left || bottom <= top {
            return Rect::default();
        }
        Rect {
            x: left as i32,
            y: top as i32,
            width: (right - left) as u32,
            height: (bottom - top) as u32,
        }
    }

    /// The overlap of two rectangles (empty if none).
    pub fn intersect(&self, other: &Rect) -> Rect {
        if self.is_empty() || other.is_empty() {
            return Rect::default();
        }
        Rect::from_edges(
            i64::from(self.x.max(other.x)),
            i64::from(self.y.max(other.y)),
            self.right().min(other.right()),
            self.bottom().min(other.bottom()),
        )
    }

    /// The smallest rectangle holding both (an empty one adds nothing).
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        Rect::from_edges(
            i64::from(self.x.min(other.x)),
            i64::from(self.y.min(other.y)),
            self.right().max(other.right()),
            self.bottom().max(other.bottom()),
        )
    }

    /// Moved by (`dx`, `dy`), clamped into range.
    pub fn translated(&self, dx: i64, dy: i64) -> Rect {
        let left = i64::from(self.x) + dx;
        let top = i64::from(self.y) + dy;
        Rect::from_edges(
            left,
            top,
            left + i64::from(self.width),
            top + i64::from(self.height),
        )
    }

    /// The part that lies on a screen (or buffer) of `mode`'s size.
    pub fn clipped_to(&self, mode: &Mode) -> Rect {
        self.intersect(&mode.bounds())
    }
}

/// A Framebuffer session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FramebufferRequest {
    /// The current mode.
    Mode,
    /// The pixel buffer: the reply carries its dataspace (writable).
    Dataspace,
    /// Flush this rectangle (clipped to the mode by the provider).
    Refresh {
        /// The dirty rectangle in screen coordinates.
        rect: Rect,
    },
    /// Test drivers only (`ram_fb`): log a checksum of this rectangle.
    Checksum {
        /// The rectangle in screen coordinates (clipped).
        rect: Rect,
    },
}

/// A Framebuffer session's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FramebufferReply {
    /// The mode.
    Mode(Mode),
    /// The message carries the buffer; it holds `size` bytes.
    Dataspace {
        /// Bytes.
        size: u64,
    },
    /// Done.
    Done,
    /// A checksum of the clipped rectangle ([`checksum`]).
    Checksum {
        /// The rectangle actually summed.
        rect: Rect,
        /// The sum.
        sum: u64,
    },
    /// Refused.
    Error(SessionError),
}

/// Decodes a request from untrusted bytes; a rectangle with a side above
/// [`MAX_DIMENSION`] is refused here, before anyone iterates over it.
pub fn decode_request(bytes: &[u8]) -> Result<FramebufferRequest, SessionError> {
    let request: FramebufferRequest = crate::decode(bytes)?;
    match request {
        FramebufferRequest::Refresh { rect } | FramebufferRequest::Checksum { rect }
            if rect.width > MAX_DIMENSION || rect.height > MAX_DIMENSION =>
        {
            Err(SessionError::BadRequest)
        }
        request => Ok(request),
    }
}

/// A framebuffer server's answer to [`FramebufferRequest::Checksum`]: the
/// rectangle's [`checksum`] over `pixels` (a `mode`-sized screen), also
/// logged as `checksum (x, y, w x h): 0x...` for scenario tests.
pub fn answer_checksum(pixels: &[u32], mode: &Mode, rect: &Rect) -> FramebufferReply {
    let (rect, sum) = checksum(pixels, mode, rect);
    crate::log!(
        "checksum ({}, {}, {} x {}): 0x{sum:016x}",
        rect.x,
        rect.y,
        rect.width,
        rect.height
    );
    FramebufferReply::Checksum { rect, sum }
}

/// A rectangle a framebuffer server watches for tests (from its config):
/// whenever its checksum changes the server logs
/// `watch NAME (x, y, w x h): sum 0x...`, which a scenario expects.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// The name in the log line.
    pub name: alloc::string::String,
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A framebuffer server's config ROM (`ram_fb`, `virtio_gpu`): the mode it
/// offers and the rectangles it watches.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Rectangles to watch.
    #[serde(default)]
    pub watch: alloc::vec::Vec<Watch>,
}

/// Watched rectangles with the checksum each last had.
pub struct Watches(alloc::vec::Vec<(Watch, Option<u64>)>);

impl Watches {
    /// Watches `rectangles`, none seen yet.
    pub fn new(rectangles: alloc::vec::Vec<Watch>) -> Self {
        Watches(rectangles.into_iter().map(|watch| (watch, None)).collect())
    }

    /// How many rectangles are watched.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Logs each watched rectangle of `pixels` (a `mode`-sized screen)
    /// whose checksum changed since the last look.
    pub fn check(&mut self, pixels: &[u32], mode: &Mode) {
        for (watch, last) in self.0.iter_mut() {
            let rect = Rect::new(watch.x, watch.y, watch.width, watch.height);
            let (clipped, sum) = checksum(pixels, mode, &rect);
            if *last != Some(sum) {
                *last = Some(sum);
                crate::log!(
                    "watch {} ({}, {}, {} x {}): sum 0x{sum:016x}",
                    watch.name,
                    clipped.x,
                    clipped.y,
                    clipped.width,
                    clipped.height
                );
            }
        }
    }
}

/// The checksum `ram_fb` logs and tests recompute: FNV-1a over the
/// rectangle's pixels, row by row, each pixel as its little-endian bytes.
/// `pixels` is a `mode`-sized buffer; the rectangle is clipped first.
pub fn checksum(pixels: &[u32], mode: &Mode, rect: &Rect) -> (Rect, u64) {
    let clipped = rect.clipped_to(mode);
    let mut sum: u64 = 0xcbf2_9ce4_8422_2325;
    for row in 0..clipped.height as usize {
        let start = (clipped.y as usize + row) * mode.width as usize + clipped.x as usize;
        let Some(line) = pixels.get(start..start + clipped.width as usize) else {
            break;
        };
        for pixel in line {
            for byte in pixel.to_le_bytes() {
                sum ^= u64::from(byte);
                sum = sum.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    (clipped, sum)
}

/// The pixel buffer a Framebuffer server shares with its client: a dataspace
/// the server creates from the session's donation and maps for itself. Every
/// display driver (`virtio_gpu`, the test driver `ram_fb`) keeps one per
/// session, made and released here.
pub struct Screen {
    /// The buffer's dataspace; its capability goes to the client.
    pub dataspace: arbor::abi::CapSlot,
    /// The buffer as the server sees it, one `u32` per pixel.
    pub pixels: &'static mut [u32],
    /// Refreshes the client asked for.
    pub refreshes: u64,
}

impl Screen {
    /// A zeroed buffer for `mode`, paid from `quota`: the buffer in whole
    /// pages plus a page for the session's bookkeeping, and two capabilities.
    pub fn create(mode: &Mode, quota: &crate::table::Quota) -> Result<Screen, SessionError> {
        use arbor::abi::{ObjectKind, slot};
        use arbor::guard::SlotGuard;
        const PAGE: u64 = 4096;
        let bytes = mode.buffer_bytes().next_multiple_of(PAGE);
        quota.require(crate::table::Quota {
            ram: bytes + PAGE,
            caps: 2,
        })?;
        let dataspace = SlotGuard::allocate()?;
        arbor::sys::create(ObjectKind::Dataspace, slot::OWN_PD, dataspace.slot(), bytes)?;
        let dataspace = dataspace.destroying();
        let pixels = arbor::vspace::map_pixels(dataspace.slot(), mode.pixels())?;
        Ok(Screen {
            dataspace: dataspace.keep(),
            pixels,
            refreshes: 0,
        })
    }

    /// Unmaps and destroys the buffer; its RAM goes back with the session.
    pub fn release(self) {
        arbor::vspace::unmap_pixels(self.pixels);
        drop(arbor::guard::SlotGuard::adopt(self.dataspace).destroying());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::encode;

    fn mode(width: u32, height: u32) -> Mode {
        Mode::new(width, height, PixelFormat::Xrgb8888).unwrap()
    }

    #[test]
    fn modes_outside_the_limits_are_refused() {
        assert!(Mode::new(0, 10, PixelFormat::Xrgb8888).is_err());
        assert!(Mode::new(10, MAX_DIMENSION + 1, PixelFormat::Xrgb8888).is_err());
        let big = mode(MAX_DIMENSION, MAX_DIMENSION);
        assert_eq!(big.buffer_bytes(), 4 * 8192 * 8192);
    }

    #[test]
    fn clipping_handles_negative_huge_and_off_screen_rectangles() {
        let screen = mode(100, 50);
        assert_eq!(
            Rect::new(-10, -5, 20, 10).clipped_to(&screen),
            Rect::new(0, 0, 10, 5)
        );
        assert_eq!(
            Rect::new(90, 40, u32::MAX, u32::MAX).clipped_to(&screen),
            Rect::new(90, 40, 10, 10)
        );
        assert!(Rect::new(100, 0, 5, 5).clipped_to(&screen).is_empty());
        assert!(Rect::new(-5, 0, 5, 5).clipped_to(&screen).is_empty());
        // i32::MIN + u32::MAX reaches i32::MAX: it covers the whole screen.
        assert_eq!(
            Rect::new(i32::MIN, i32::MIN, u32::MAX, u32::MAX).clipped_to(&screen),
            screen.bounds()
        );
        assert!(
            Rect::new(i32::MIN, i32::MIN, u32::MAX / 2, u32::MAX / 2)
                .clipped_to(&screen)
                .is_empty()
        );
        assert_eq!(
            Rect::new(i32::MIN, i32::MIN, u32::MAX, u32::MAX).intersect(&Rect::new(-1, -1, 2, 2)),
            Rect::new(-1, -1, 2, 2)
        );
        assert_eq!(
            Rect::new(i32::MAX, i32::MAX, u32::MAX, u32::MAX).translated(i64::MAX / 4, 0),
            Rect::default()
        );
    }

    #[test]
    fn union_ignores_empty_rectangles() {
        let a = Rect::new(0, 0, 2, 2);
        assert_eq!(a.union(&Rect::new(50, 50, 0, 9)), a);
        assert_eq!(Rect::default().union(&a), a);
        assert_eq!(a.union(&Rect::new(4, 4, 1, 1)), Rect::new(0, 0, 5, 5));
    }

    #[test]
    fn checksum_depends_on_every_pixel_of_the_clipped_rectangle() {
        let screen = mode(4, 4);
        let mut pixels = std::vec![0u32; 16];
        let (rect, before) = checksum(&pixels, &screen, &Rect::new(1, 1, 100, 100));
        assert_eq!(rect, Rect::new(1, 1, 3, 3));
        pixels[15] = 1;
        assert_ne!(checksum(&pixels, &screen, &rect).1, before);
        // A pixel outside does not count.
        pixels[0] = 7;
        assert_eq!(
            checksum(&pixels, &screen, &rect).1,
            checksum(&pixels, &screen, &rect).1
        );
        let (_, with_outside) = checksum(&pixels, &screen, &rect);
        pixels[0] = 0;
        assert_eq!(checksum(&pixels, &screen, &rect).1, with_outside);
    }

    #[test]
    fn requests_round_trip_and_oversized_rectangles_are_refused() {
        let mut buffer = [0u8; 64];
        let request = FramebufferRequest::Refresh {
            rect: Rect::new(-3, 4, 5, 6),
        };
        let len = encode(&request, &mut buffer).unwrap();
        assert_eq!(decode_request(&buffer[..len]), Ok(request));
        let huge = FramebufferRequest::Checksum {
            rect: Rect::new(0, 0, MAX_DIMENSION + 1, 1),
        };
        let len = encode(&huge, &mut buffer).unwrap();
        assert_eq!(
            decode_request(&buffer[..len]),
            Err(SessionError::BadRequest)
        );
    }

    #[test]
    fn fuzzed_bytes_never_panic_and_decoded_rectangles_are_bounded() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut bytes = [0u8; 24];
            let len = (state % 24) as usize;
            for byte in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            if let Ok(
                FramebufferRequest::Refresh { rect } | FramebufferRequest::Checksum { rect },
            ) = decode_request(&bytes[..len])
            {
                assert!(rect.width <= MAX_DIMENSION && rect.height <= MAX_DIMENSION);
                let _ = rect.clipped_to(&mode(640, 480));
            }
        }
    }
}
