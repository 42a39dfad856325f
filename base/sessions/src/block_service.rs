//! The Block service for any [`BlockBackend`] (a RAM disk now, virtio-blk
//! later) on the server framework: one packet stream per session paid from
//! its donation, every descriptor checked by [`crate::block::decode_request`]
//! against the device before the backend sees it.

use crate::block::{self, BlockError, Info, Request};
use crate::bulk::{ServerStream, StreamReply};
use crate::server::{Call, Service};
use crate::table::{Entry, Quota, SessionTable};
use crate::{SessionError, log};
use alloc::vec::Vec;
use arbor::abi::CapSlot;
use arbor::packet_stream::Status;

/// The server notification bit clients wake the server with.
pub const WAKE_BIT: u64 = 1;

/// A device a Block server serves.
pub trait BlockBackend {
    /// Bytes per block.
    fn block_size(&self) -> u32;
    /// Blocks on the device.
    fn block_count(&self) -> u64;
    /// Reads blocks from `first` into `out` (whole blocks, on the device: checked).
    fn read(&mut self, first: u64, out: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `data` (whole blocks) from block `first`.
    fn write(&mut self, first: u64, data: &[u8]) -> Result<(), BlockError>;
    /// Makes writes durable.
    fn flush(&mut self) -> Result<(), BlockError>;
}

/// One session's state.
pub struct BlockSession {
    stream: ServerStream,
    scratch: Vec<u8>,
}

/// The Block service over `backend`.
pub struct BlockService<B: BlockBackend> {
    /// The device.
    pub backend: B,
    writable: bool,
    wake: CapSlot,
}

impl<B: BlockBackend> BlockService<B> {
    /// Serves `backend` (read-only unless `writable`); `wake` is the
    /// capability clients get to wake the server.
    pub fn new(backend: B, writable: bool, wake: CapSlot) -> Self {
        BlockService {
            backend,
            writable,
            wake,
        }
    }

    fn info(&self) -> Info {
        Info {
            block_size: self.backend.block_size(),
            block_count: self.backend.block_count(),
            writable: self.writable,
        }
    }

    fn serve_one(
        &mut self,
        session: &mut BlockSession,
        request: &arbor::packet_stream::Request,
    ) -> Status {
        let Ok(packet) = request.payload() else {
            return Status::BAD_DESCRIPTOR;
        };
        let info = self.info();
        let decoded =
            block::decode_request(request.opcode(), request.argument(), packet.length(), &info);
        let stream = &session.stream.stream;
        let buffer = &mut session.scratch;
        let mut sized = |length: usize| -> Result<(), BlockError> {
            buffer.clear();
            buffer.try_reserve(length).map_err(|_| BlockError::Io)?;
            buffer.resize(length, 0);
            Ok(())
        };
        let result = match decoded {
            Ok(Request::Read { first, .. }) => sized(packet.length()).and_then(|()| {
                self.backend.read(first, buffer)?;
                stream.write(packet, 0, buffer).map_err(|_| BlockError::Io)
            }),
            Ok(Request::Write { first, .. }) => sized(packet.length()).and_then(|()| {
                stream.read(packet, 0, buffer).map_err(|_| BlockError::Io)?;
                self.backend.write(first, buffer)
            }),
            Ok(Request::Flush) => self.backend.flush(),
            Ok(Request::Info) => stream
                .write(packet, 0, &info.to_bytes())
                .map_err(|_| BlockError::Io),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => Status::OK,
            Err(error) => error.status(),
        }
    }

    fn drain(&mut self, label: &str, session: &mut BlockSession) {
        let mut answered = false;
        loop {
            let request = match session.stream.stream.next_request() {
                Ok(Some((request, _))) => request,
                Ok(None) => break,
                Err(error) => {
                    log!("\"{label}\": broken stream ({error:?})");
                    break;
                }
            };
            let status = self.serve_one(session, &request);
            if session.stream.stream.acknowledge(request, status).is_err() {
                log!("\"{label}\": broken ack ring");
                break;
            }
            answered = true;
        }
        if answered {
            session.stream.signal_client();
        }
    }
}

impl<B: BlockBackend> Service for BlockService<B> {
    type Session = BlockSession;
    type Reply = StreamReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<BlockSession, SessionError> {
        Ok(BlockSession {
            stream: ServerStream::create(args, quota)?,
            scratch: Vec::new(),
        })
    }

    fn opened(&mut self, session: &Entry<BlockSession>) {
        log!(
            "session {} for \"{}\": {} blocks of {} bytes, {}",
            session.badge,
            session.label,
            self.backend.block_count(),
            self.backend.block_size(),
            if self.writable {
                "writable"
            } else {
                "read-only"
            }
        );
    }

    fn handle(&mut self, session: &mut Entry<BlockSession>, call: &mut Call<'_>) -> StreamReply {
        session.state.stream.setup(call, self.wake)
    }

    fn error(error: SessionError) -> StreamReply {
        StreamReply::Error(error)
    }

    fn close(&mut self, session: Entry<BlockSession>) {
        session.state.stream.destroy();
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<BlockSession>) {
        if bits & WAKE_BIT == 0 {
            return;
        }
        for entry in sessions.iter_mut() {
            self.drain(&entry.label, &mut entry.state);
        }
    }
}
