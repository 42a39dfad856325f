//! The virtio-gpu 2D control commands this driver sends, as bytes, and the
//! checks on the device's answers (virtio 1.2, section 5.7.6).
//!
//! Plain encoding and decoding, tested on the host. Every command starts
//! with a 24-byte `virtio_gpu_ctrl_hdr`; all fields are little-endian.
//! The device's answers are checked, not trusted: a short or unexpected
//! response is an error naming what came back.
use arbor_sessions::framebuffer::{Mode, Rect};

/// `VIRTIO_GPU_CMD_GET_DISPLAY_INFO`.
pub const GET_DISPLAY_INFO: u32 = 0x100;
/// `VIRTIO_GPU_CMD_RESOURCE_CREATE_2D`.
pub const RESOURCE_CREATE_2D: u32 = 0x101;
/// `VIRTIO_GPU_CMD_SET_SCANOUT`.
pub const SET_SCANOUT: u32 = 0x103;
/// `VIRTIO_GPU_CMD_RESOURCE_FLUSH`.
pub const RESOURCE_FLUSH: u32 = 0x104;
/// `VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D`.
pub const TRANSFER_TO_HOST_2D: u32 = 0x105;
/// `VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING`.
pub const RESOURCE_ATTACH_BACKING: u32 = 0x106;
/// `VIRTIO_GPU_RESP_OK_NODATA`.
pub const OK_NODATA: u32 = 0x1100;
/// `VIRTIO_GPU_RESP_OK_DISPLAY_INFO`.
pub const OK_DISPLAY_INFO: u32 = 0x1101;
/// `VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM`: bytes B, G, R, A in memory, i.e. a
/// little-endian 0xAARRGGBB word — the Framebuffer session's Xrgb8888.
pub const FORMAT_B8G8R8A8: u32 = 1;

/// Bytes of the control header.
const HEADER: usize = 24;
/// Bytes of a `virtio_gpu_resp_display_info` (header, 16 scanouts of 24).
pub const DISPLAY_INFO_BYTES: usize = HEADER + 16 * 24;
/// The longest command this driver sends.
pub const MAX_COMMAND: usize = 56;

/// One encoded command: its bytes and how many are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    bytes: [u8; MAX_COMMAND],
    length: usize,
}

impl Command {
    fn new(kind: u32) -> Self {
        let mut command = Command {
            bytes: [0; MAX_COMMAND],
            length: 0,
        };
        command.u32(kind); // type
        command.u32(0); // flags: no fence
        command.u64(0); // fence_id
        command.u32(0); // ctx_id
        command.u32(0); // ring_idx and padding
        command
    }

    fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes[self.length..self.length + 4].copy_from_slice(&value.to_le_bytes());
        self.length += 4;
        self
    }

    fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes[self.length..self.length + 8].copy_from_slice(&value.to_le_bytes());
        self.length += 8;
        self
    }

    fn rect(&mut self, rect: &DeviceRect) -> &mut Self {
        self.u32(rect.x)
            .u32(rect.y)
            .u32(rect.width)
            .u32(rect.height)
    }

    /// The bytes to send.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

/// A rectangle in the device's terms (`virtio_gpu_rect`): unsigned, and
/// inside the resource by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl DeviceRect {
    /// `rect` clipped to `mode`; `None` when nothing of it is on screen.
    pub fn within(rect: &Rect, mode: &Mode) -> Option<Self> {
        let clipped = rect.clipped_to(mode);
        if clipped.is_empty() {
            return None;
        }
        // Clipping to the mode made every coordinate non-negative and
        // bounded by the mode's width and height.
        Some(DeviceRect {
            x: u32::try_from(clipped.x).ok()?,
            y: u32::try_from(clipped.y).ok()?,
            width: clipped.width,
            height: clipped.height,
        })
    }

    /// The whole of `mode`.
    pub fn whole(mode: &Mode) -> Self {
        DeviceRect {
            x: 0,
            y: 0,
            width: mode.width,
            height: mode.height,
        }
    }
}

/// `GET_DISPLAY_INFO`.
pub fn get_display_info() -> Command {
    Command::new(GET_DISPLAY_INFO)
}

/// `RESOURCE_CREATE_2D` of a B8G8R8A8 resource.
pub fn resource_create_2d(resource: u32, width: u32, height: u32) -> Command {
    let mut command = Command::new(RESOURCE_CREATE_2D);
    command
        .u32(resource)
        .u32(FORMAT_B8G8R8A8)
        .u32(width)
        .u32(height);
    command
}

/// `RESOURCE_ATTACH_BACKING` with one entry: `length` bytes at `address`.
pub fn resource_attach_backing(resource: u32, address: u64, length: u32) -> Command {
    let mut command = Command::new(RESOURCE_ATTACH_BACKING);
    command.u32(resource).u32(1).u64(address).u32(length).u32(0);
    command
}

/// `SET_SCANOUT`: `resource`'s `rect` is shown on `scanout`.
pub fn set_scanout(rect: &DeviceRect, scanout: u32, resource: u32) -> Command {
    let mut command = Command::new(SET_SCANOUT);
    command.rect(rect).u32(scanout).u32(resource);
    command
}

/// `TRANSFER_TO_HOST_2D` of `rect` from a backing `stride` bytes per row.
///
/// The device copies row `h` of the rectangle from backing offset
/// `offset + h * stride` (QEMU's `virtio_gpu_transfer_to_host_2d`), so the
/// offset is that of the rectangle's first pixel.
pub fn transfer_to_host_2d(rect: &DeviceRect, stride: u32, resource: u32) -> Command {
    let offset = u64::from(rect.y) * u64::from(stride) + u64::from(rect.x) * 4;
    let mut command = Command::new(TRANSFER_TO_HOST_2D);
    command.rect(rect).u64(offset).u32(resource).u32(0);
    command
}

/// `RESOURCE_FLUSH` of `rect` of `resource`.
pub fn resource_flush(rect: &DeviceRect, resource: u32) -> Command {
    let mut command = Command::new(RESOURCE_FLUSH);
    command.rect(rect).u32(resource).u32(0);
    command
}

/// What was wrong with a device's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Fewer bytes than a header.
    Short(usize),
    /// A response type other than the one expected (e.g. an
    /// `ERR_*` code, 0x1200 and up).
    Type {
        /// What the command should have been answered with.
        expected: u32,
        /// What the device answered.
        got: u32,
    },
}

impl core::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ResponseError::Short(length) => write!(f, "a {length}-byte response"),
            ResponseError::Type { expected, got } => {
                write!(f, "response 0x{got:x} where 0x{expected:x} was due")
            }
        }
    }
}

/// Checks that `response` is of type `expected`.
pub fn check(response: &[u8], expected: u32) -> Result<(), ResponseError> {
    let kind = response
        .get(..4)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ResponseError::Short(response.len()))?;
    if kind != expected {
        return Err(ResponseError::Type {
            expected,
            got: kind,
        });
    }
    Ok(())
}

/// The first scanout's width and height from a display-info response.
pub fn first_scanout_size(response: &[u8]) -> Result<(u32, u32), ResponseError> {
    check(response, OK_DISPLAY_INFO)?;
    let field = |at: usize| {
        response
            .get(at..at + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(ResponseError::Short(response.len()))
    };
    // The first `virtio_gpu_display_one`: rect (x, y, width, height).
    Ok((field(HEADER + 8)?, field(HEADER + 12)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_sessions::framebuffer::PixelFormat;

    fn words(command: &Command) -> Vec<u32> {
        command
            .bytes()
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn commands_have_the_spec_layout() {
        let rect = DeviceRect {
            x: 16,
            y: 40,
            width: 64,
            height: 48,
        };
        let flush = resource_flush(&rect, 1);
        assert_eq!(flush.bytes().len(), 48);
        assert_eq!(
            words(&flush),
            [RESOURCE_FLUSH, 0, 0, 0, 0, 0, 16, 40, 64, 48, 1, 0]
        );
        let create = resource_create_2d(1, 1280, 800);
        assert_eq!(words(&create)[6..], [1, FORMAT_B8G8R8A8, 1280, 800]);
        let attach = resource_attach_backing(1, 0x1_2345_6000, 4_096_000);
        assert_eq!(attach.bytes().len(), 48);
        assert_eq!(words(&attach)[6..], [1, 1, 0x2345_6000, 1, 4_096_000, 0]);
        let scanout = set_scanout(&rect, 0, 1);
        assert_eq!(words(&scanout)[6..], [16, 40, 64, 48, 0, 1]);
        assert_eq!(get_display_info().bytes().len(), 24);
    }

    #[test]
    fn a_transfer_starts_at_the_rectangles_first_pixel() {
        let rect = DeviceRect {
            x: 16,
            y: 40,
            width: 64,
            height: 48,
        };
        let transfer = transfer_to_host_2d(&rect, 1280 * 4, 1);
        assert_eq!(transfer.bytes().len(), MAX_COMMAND);
        let offset = 40 * 1280 * 4 + 16 * 4;
        assert_eq!(
            words(&transfer)[6..],
            [16, 40, 64, 48, offset as u32, 0, 1, 0]
        );
    }

    #[test]
    fn rectangles_are_clipped_to_the_screen_or_dropped() {
        let mode = Mode::new(320, 240, PixelFormat::Xrgb8888).unwrap();
        assert_eq!(
            DeviceRect::within(&Rect::new(-10, 230, 50, 50), &mode),
            Some(DeviceRect {
                x: 0,
                y: 230,
                width: 40,
                height: 10
            })
        );
        assert_eq!(
            DeviceRect::within(&Rect::new(i32::MIN, i32::MIN, u32::MAX, u32::MAX), &mode),
            Some(DeviceRect::whole(&mode))
        );
        assert_eq!(DeviceRect::within(&Rect::new(320, 0, 8, 8), &mode), None);
        assert_eq!(DeviceRect::within(&Rect::new(5, 5, 0, 8), &mode), None);
    }

    #[test]
    fn answers_are_checked_not_trusted() {
        let mut ok = [0u8; 24];
        ok[..4].copy_from_slice(&OK_NODATA.to_le_bytes());
        assert_eq!(check(&ok, OK_NODATA), Ok(()));
        let mut error = ok;
        error[..4].copy_from_slice(&0x1200u32.to_le_bytes());
        assert_eq!(
            check(&error, OK_NODATA),
            Err(ResponseError::Type {
                expected: OK_NODATA,
                got: 0x1200
            })
        );
        assert_eq!(check(&[1, 2], OK_NODATA), Err(ResponseError::Short(2)));

        let mut info = [0u8; DISPLAY_INFO_BYTES];
        info[..4].copy_from_slice(&OK_DISPLAY_INFO.to_le_bytes());
        info[32..36].copy_from_slice(&1280u32.to_le_bytes());
        info[36..40].copy_from_slice(&800u32.to_le_bytes());
        assert_eq!(first_scanout_size(&info), Ok((1280, 800)));
        assert_eq!(
            first_scanout_size(&info[..30]),
            Err(ResponseError::Short(30))
        );
        assert!(first_scanout_size(&ok).is_err());
    }
}
