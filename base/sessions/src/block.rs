//! The Block session: fixed-size blocks over a packet stream.
//!
//! One packet per request (the stream is set up as in [`crate::bulk`]):
//! the descriptor's opcode is one of [`op`], its argument the first block,
//! and its payload length the bytes to move, a non-zero multiple of the
//! block size. A read's data comes back in the packet; a write's goes in
//! it. [`op::INFO`] asks for the geometry: the server writes an [`Info`]
//! into the packet's first [`INFO_SIZE`] bytes.
//!
//! [`decode_request`] checks every request against the device before a
//! driver sees it: the block range must lie on the device (no overflow),
//! the length must be whole blocks and at most [`MAX_BLOCKS_PER_REQUEST`],
//! and a write on a read-only session is refused. Garbage gets an error
//! status, never a panic.

use arbor::packet_stream::{Opcode, Status};

/// Most blocks one request may move.
pub const MAX_BLOCKS_PER_REQUEST: u64 = 256;
/// Bytes of an [`Info`] answer.
pub const INFO_SIZE: usize = 16;

/// Packet opcodes.
pub mod op {
    use arbor::packet_stream::Opcode;
    /// Read blocks `argument..` into the packet.
    pub const READ: Opcode = Opcode(16);
    /// Write the packet to blocks `argument..`.
    pub const WRITE: Opcode = Opcode(17);
    /// Make every acknowledged write durable.
    pub const FLUSH: Opcode = Opcode(18);
    /// Write the device's [`super::Info`] into the packet.
    pub const INFO: Opcode = Opcode(19);
}

/// Why a block request failed; travels as the acknowledgement status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum BlockError {
    /// Unknown opcode, or a length that is not whole blocks (or too many).
    BadRequest = 32,
    /// The blocks lie (partly) beyond the device's end.
    OutOfRange = 33,
    /// The session may not write.
    ReadOnly = 34,
    /// The device failed.
    Io = 35,
}

impl BlockError {
    /// The acknowledgement status carrying this error.
    pub fn status(self) -> Status {
        Status(self as u16)
    }

    /// The error a status names (`None` for OK and unknown statuses).
    pub fn from_status(status: Status) -> Option<BlockError> {
        [
            BlockError::BadRequest,
            BlockError::OutOfRange,
            BlockError::ReadOnly,
            BlockError::Io,
        ]
        .into_iter()
        .find(|error| *error as u16 == status.0)
    }
}

/// The device's geometry and the session's right to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// Bytes per block (a power of two, 512..=4096).
    pub block_size: u32,
    /// Blocks on the device.
    pub block_count: u64,
    /// Whether this session may write.
    pub writable: bool,
}

impl Info {
    /// The answer's bytes.
    pub fn to_bytes(&self) -> [u8; INFO_SIZE] {
        let mut bytes = [0u8; INFO_SIZE];
        bytes[0..4].copy_from_slice(&self.block_size.to_le_bytes());
        bytes[4] = u8::from(self.writable);
        bytes[8..16].copy_from_slice(&self.block_count.to_le_bytes());
        bytes
    }

    /// Reads an answer (the client's check of what a server wrote).
    pub fn from_bytes(bytes: &[u8]) -> Option<Info> {
        let bytes = bytes.get(..INFO_SIZE)?;
        let mut size = [0u8; 4];
        size.copy_from_slice(&bytes[0..4]);
        let mut count = [0u8; 8];
        count.copy_from_slice(&bytes[8..16]);
        let block_size = u32::from_le_bytes(size);
        let valid_size = block_size.is_power_of_two() && (512..=4096).contains(&block_size);
        (valid_size && bytes[4] <= 1).then_some(Info {
            block_size,
            block_count: u64::from_le_bytes(count),
            writable: bytes[4] == 1,
        })
    }
}

/// A checked request: its blocks lie on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Read `count` blocks from `first`.
    Read {
        /// First block.
        first: u64,
        /// Blocks.
        count: u64,
    },
    /// Write `count` blocks from `first`.
    Write {
        /// First block.
        first: u64,
        /// Blocks.
        count: u64,
    },
    /// Make writes durable.
    Flush,
    /// Report the geometry.
    Info,
}

/// Checks one descriptor (`opcode`, `argument` = first block, `length` =
/// payload bytes) against `info`.
pub fn decode_request(
    opcode: Opcode,
    argument: u64,
    length: usize,
    info: &Info,
) -> Result<Request, BlockError> {
    let blocks = || -> Result<(u64, u64), BlockError> {
        let block_size = u64::from(info.block_size.max(1));
        let length = length as u64;
        if length == 0 || !length.is_multiple_of(block_size) {
            return Err(BlockError::BadRequest);
        }
        let count = length / block_size;
        if count > MAX_BLOCKS_PER_REQUEST {
            return Err(BlockError::BadRequest);
        }
        match argument.checked_add(count) {
            Some(end) if end <= info.block_count => Ok((argument, count)),
            _ => Err(BlockError::OutOfRange),
        }
    };
    match opcode {
        op::READ => blocks().map(|(first, count)| Request::Read { first, count }),
        op::WRITE => {
            let (first, count) = blocks()?;
            if !info.writable {
                return Err(BlockError::ReadOnly);
            }
            Ok(Request::Write { first, count })
        }
        op::FLUSH if argument == 0 => Ok(Request::Flush),
        op::INFO if argument == 0 && length >= INFO_SIZE => Ok(Request::Info),
        _ => Err(BlockError::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const DISK: Info = Info {
        block_size: 512,
        block_count: 100,
        writable: true,
    };

    #[test]
    fn ranges_on_the_device_pass() {
        assert_eq!(
            decode_request(op::READ, 0, 512, &DISK),
            Ok(Request::Read { first: 0, count: 1 })
        );
        assert_eq!(
            decode_request(op::WRITE, 96, 2048, &DISK),
            Ok(Request::Write {
                first: 96,
                count: 4
            })
        );
        assert_eq!(decode_request(op::FLUSH, 0, 0, &DISK), Ok(Request::Flush));
        assert_eq!(decode_request(op::INFO, 0, 64, &DISK), Ok(Request::Info));
    }

    #[test]
    fn out_of_range_overflow_and_partial_blocks_are_refused() {
        assert_eq!(
            decode_request(op::READ, 100, 512, &DISK),
            Err(BlockError::OutOfRange)
        );
        assert_eq!(
            decode_request(op::READ, 99, 1024, &DISK),
            Err(BlockError::OutOfRange)
        );
        assert_eq!(
            decode_request(op::READ, u64::MAX, 512, &DISK),
            Err(BlockError::OutOfRange)
        );
        assert_eq!(
            decode_request(op::READ, 0, 511, &DISK),
            Err(BlockError::BadRequest)
        );
        assert_eq!(
            decode_request(op::READ, 0, 0, &DISK),
            Err(BlockError::BadRequest)
        );
        assert_eq!(
            decode_request(op::READ, 0, 257 * 512, &DISK),
            Err(BlockError::BadRequest)
        );
        assert_eq!(
            decode_request(Opcode(99), 0, 512, &DISK),
            Err(BlockError::BadRequest)
        );
        assert_eq!(
            decode_request(op::INFO, 0, 8, &DISK),
            Err(BlockError::BadRequest)
        );
        assert_eq!(
            decode_request(op::FLUSH, 3, 0, &DISK),
            Err(BlockError::BadRequest)
        );
    }

    #[test]
    fn a_read_only_session_cannot_write() {
        let read_only = Info {
            writable: false,
            ..DISK
        };
        assert_eq!(
            decode_request(op::WRITE, 0, 512, &read_only),
            Err(BlockError::ReadOnly)
        );
        assert!(decode_request(op::READ, 0, 512, &read_only).is_ok());
    }

    #[test]
    fn info_round_trips_and_garbage_is_refused() {
        let bytes = DISK.to_bytes();
        assert_eq!(Info::from_bytes(&bytes), Some(DISK));
        let mut odd = bytes;
        odd[0] = 3;
        assert_eq!(Info::from_bytes(&odd), None);
        let mut flag = bytes;
        flag[4] = 7;
        assert_eq!(Info::from_bytes(&flag), None);
        assert_eq!(Info::from_bytes(&bytes[..8]), None);
        assert_eq!(
            BlockError::from_status(BlockError::Io.status()),
            Some(BlockError::Io)
        );
        assert_eq!(BlockError::from_status(Status::OK), None);
    }

    /// Arbitrary descriptors: every accepted range lies on the device.
    #[test]
    fn fuzz_arbitrary_descriptors_never_escape_the_device() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let opcode = Opcode(16 + (next() % 6) as u16);
            let argument = match next() % 3 {
                0 => next(),
                1 => next() % 120,
                _ => 0,
            };
            let length = match next() % 3 {
                0 => next() as usize,
                1 => (next() % 300) as usize * 512,
                _ => (next() % 5000) as usize,
            };
            let info = Info {
                block_size: 512 << (next() % 4),
                block_count: next() % 1000,
                writable: next() % 2 == 0,
            };
            if let Ok(Request::Read { first, count } | Request::Write { first, count }) =
                decode_request(opcode, argument, length, &info)
            {
                assert!((1..=MAX_BLOCKS_PER_REQUEST).contains(&count));
                assert!(first + count <= info.block_count);
                assert_eq!(count * u64::from(info.block_size), length as u64);
            }
        }
    }
}
