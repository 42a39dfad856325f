//! The Block session as fat_fs's [`BlockDevice`]: one packet per block,
//! submitted and waited for. The geometry comes from the server's Info
//! answer, checked ([`Info::from_bytes`]) before it is believed.

use arbor::packet_stream::{Opcode, Status};
use arbor_sessions::block::{BlockError, INFO_SIZE, Info, op};
use arbor_sessions::bulk::{BulkError, ClientStream, StreamArgs};
use fat_fs::cache::{BlockDevice, DeviceError};

/// A Block session.
pub struct BlockClient {
    stream: ClientStream,
    info: Info,
}

/// Why the session could not be had.
pub enum OpenError {
    /// The session or its stream.
    Session(BulkError),
    /// The server's Info answer made no sense.
    BadInfo,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::Session(error) => write!(f, "{error}"),
            OpenError::BadInfo => f.write_str("the server's Info answer made no sense"),
        }
    }
}

impl BlockClient {
    /// Opens a Block session and asks for the device's geometry.
    pub fn open() -> Result<BlockClient, OpenError> {
        let stream = ClientStream::open(
            "Block",
            "",
            StreamArgs {
                payload_len: 8192,
                entries: 4,
            },
        )
        .map_err(OpenError::Session)?;
        let mut client = BlockClient {
            stream,
            info: Info {
                block_size: 512,
                block_count: 0,
                writable: false,
            },
        };
        let mut bytes = [0u8; INFO_SIZE];
        client
            .exchange(op::INFO, 0, &mut bytes, false)
            .map_err(|_| OpenError::BadInfo)?;
        client.info = Info::from_bytes(&bytes).ok_or(OpenError::BadInfo)?;
        Ok(client)
    }

    /// The device's geometry.
    pub fn info(&self) -> Info {
        self.info
    }

    /// One request on `buffer`: sent first if `send`, filled from the answer otherwise.
    fn exchange(
        &mut self,
        opcode: Opcode,
        argument: u64,
        buffer: &mut [u8],
        send: bool,
    ) -> Result<(), DeviceError> {
        let stream = &mut self.stream;
        let packet = stream
            .stream
            .alloc_packet(buffer.len().max(1))
            .map_err(|_| DeviceError)?;
        if send && stream.stream.write(&packet, 0, buffer).is_err() {
            let _ = stream.stream.free_packet(packet);
            return Err(DeviceError);
        }
        let ack = stream
            .exchange(packet, opcode, argument)
            .map_err(|_| DeviceError)?;
        let copied = if send || buffer.is_empty() {
            Ok(())
        } else {
            stream.stream.read(&ack.packet, 0, buffer)
        };
        let _ = stream.stream.free_packet(ack.packet);
        match (ack.status, copied) {
            (Status::OK, Ok(())) => Ok(()),
            (status, _) => {
                if let Some(error) = BlockError::from_status(status) {
                    arbor_sessions::log!("Block request {} refused: {error:?}", opcode.0);
                }
                Err(DeviceError)
            }
        }
    }
}

impl BlockDevice for BlockClient {
    fn block_size(&self) -> usize {
        self.info.block_size as usize
    }

    fn block_count(&self) -> u64 {
        self.info.block_count
    }

    fn read_block(&mut self, index: u64, out: &mut [u8]) -> Result<(), DeviceError> {
        let size = self.block_size();
        let block = out.get_mut(..size).ok_or(DeviceError)?;
        self.exchange(op::READ, index, block, false)
    }

    fn write_block(&mut self, index: u64, data: &[u8]) -> Result<(), DeviceError> {
        let size = self.block_size();
        let mut block = alloc::vec::Vec::new();
        block.extend_from_slice(data.get(..size).ok_or(DeviceError)?);
        self.exchange(op::WRITE, index, &mut block, true)
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        self.exchange(op::FLUSH, 0, &mut [], true)
    }
}
