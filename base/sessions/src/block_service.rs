//! The Block service for any [`BlockBackend`] (ram_block, virtio_blk) on
//! the server framework: one packet stream per session paid from its
//! donation, every descriptor checked by [`crate::block::decode_request`]
//! against the device before the backend sees it.
//!
//! A client's garbage is refused, logged (the first [`REFUSALS_LOGGED`]
//! per session, then one line saying the rest are not) and answered with
//! an error status: a payload outside the shared buffer, one overlapping
//! another request taken in the same pass, absurd blocks or lengths,
//! unknown opcodes. A client that publishes an impossible ring index has
//! broken its stream: that is logged once and its session is ignored from
//! then on, while every other session is served as before.

use crate::block::{self, BlockError, Info, Request};
use crate::bulk::{ServerStream, StreamReply};
use crate::server::{Call, Service};
use crate::table::{Entry, Quota, SessionTable};
use crate::{SessionError, log};
use alloc::format;
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

/// Refusals logged per session; a client sending garbage cannot flood the log.
pub const REFUSALS_LOGGED: u32 = 8;

/// Most requests of one session taken in one pass over the sessions
/// (the rest wait for the next pass, so a flood cannot starve the others).
pub const REQUESTS_PER_PASS: usize = 16;

/// One session's state.
pub struct BlockSession {
    stream: ServerStream,
    scratch: Vec<u8>,
    refusals_logged: u32,
    /// The client broke its stream (an impossible ring index): ignored.
    broken: bool,
}

/// Whether payload `[offset, offset + length)` overlaps one of `taken`.
pub fn overlaps(taken: &[(u64, u64)], offset: u64, length: u64) -> bool {
    let end = offset.saturating_add(length);
    length > 0
        && taken
            .iter()
            .any(|&(start, len)| len > 0 && offset < start.saturating_add(len) && start < end)
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

    /// Serves up to [`REQUESTS_PER_PASS`] of the session's requests; true
    /// if it stopped at that limit (more may be waiting).
    fn drain(&mut self, label: &str, session: &mut BlockSession) -> bool {
        if session.broken {
            return false;
        }
        let mut answered = false;
        // Payloads of the requests served in this pass.
        let mut taken: [(u64, u64); REQUESTS_PER_PASS] = [(0, 0); REQUESTS_PER_PASS];
        let (mut count, mut served) = (0, 0);
        while count < REQUESTS_PER_PASS {
            let request = match session.stream.stream.next_request() {
                Ok(Some((request, _))) => request,
                Ok(None) => break,
                Err(error) => {
                    log!(
                        "\"{label}\": refused: broken stream ({error:?}, a ring index out of range); its requests are ignored from now on"
                    );
                    session.broken = true;
                    break;
                }
            };
            count += 1;
            let status = match request.payload() {
                Err(_) => Err("payload outside the shared buffer"),
                Ok(packet) => {
                    let range = (packet.offset(), packet.length() as u64);
                    let decoded = block::decode_request(
                        request.opcode(),
                        request.argument(),
                        packet.length(),
                        &self.info(),
                    );
                    match decoded {
                        Err(error) => Ok(error.status()),
                        Ok(_) if overlaps(&taken[..served], range.0, range.1) => {
                            Err("payload overlapping another request in flight")
                        }
                        Ok(_) => {
                            taken[served] = range;
                            served += 1;
                            Ok(self.serve_one(session, &request))
                        }
                    }
                }
            };
            let status = match status {
                Ok(status) => {
                    if let Some(error) = BlockError::from_status(status)
                        && error != BlockError::Io
                    {
                        Self::refused(label, session, &request, &format!("{error:?}"));
                    }
                    status
                }
                Err(why) => {
                    Self::refused(label, session, &request, why);
                    Status::BAD_DESCRIPTOR
                }
            };
            if session.stream.stream.acknowledge(request, status).is_err() {
                log!("\"{label}\": refused: broken ack ring; its requests are ignored from now on");
                session.broken = true;
                break;
            }
            answered = true;
        }
        if answered {
            session.stream.signal_client();
        }
        count == REQUESTS_PER_PASS
    }

    /// Logs a refusal, up to [`REFUSALS_LOGGED`] per session.
    fn refused(
        label: &str,
        session: &mut BlockSession,
        request: &arbor::packet_stream::Request,
        why: &str,
    ) {
        session.refusals_logged = session.refusals_logged.saturating_add(1);
        if session.refusals_logged <= REFUSALS_LOGGED {
            log!(
                "\"{label}\": refused opcode {} block {}: {why}",
                request.opcode().0,
                request.argument(),
            );
        }
        if session.refusals_logged == REFUSALS_LOGGED {
            log!("\"{label}\": further refusals are not logged");
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
            refusals_logged: 0,
            broken: false,
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
        // Passes over every session until none has work left, each taking
        // at most REQUESTS_PER_PASS of one session's requests.
        loop {
            let mut more = false;
            for entry in sessions.iter_mut() {
                more |= self.drain(&entry.label, &mut entry.state);
            }
            if !more {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_payloads_are_found() {
        let taken = [(0, 512), (4096, 1024)];
        assert!(overlaps(&taken, 0, 512));
        assert!(overlaps(&taken, 511, 1));
        assert!(overlaps(&taken, 5000, 10_000));
        assert!(!overlaps(&taken, 512, 3584));
        assert!(!overlaps(&taken, 5120, 512));
        assert!(!overlaps(&taken, u64::MAX - 5, u64::MAX));
        assert!(overlaps(&[(u64::MAX - 9, 9)], u64::MAX - 5, u64::MAX));
        assert!(!overlaps(&[], 0, u64::MAX));
    }

    /// Arbitrary ranges: an overlap is reported exactly when some byte is shared.
    #[test]
    fn fuzz_overlap_agrees_with_a_byte_walk() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let a = (next() % 64, next() % 16);
            let b = (next() % 64, next() % 16);
            let shared = (a.0..a.0 + a.1).any(|byte| (b.0..b.0 + b.1).contains(&byte));
            assert_eq!(overlaps(&[a], b.0, b.1), shared, "{a:?} {b:?}");
        }
    }
}
