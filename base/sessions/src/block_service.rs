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
    /// Runs several reads and writes at once, each with its own buffer,
    /// and sets each one's `result`. The service never hands over two jobs
    /// that touch a common block unless both only read, so the backend may
    /// run them in any order and complete them out of order. By default
    /// one after the other.
    fn run_jobs(&mut self, jobs: &mut [Job]) {
        for job in jobs.iter_mut() {
            job.result = if job.write {
                self.write(job.first, &job.buffer)
            } else {
                self.read(job.first, &mut job.buffer)
            };
        }
    }
}

/// A checked read or write the service hands its backend.
#[derive(Debug)]
pub struct Job {
    /// First block.
    pub first: u64,
    /// Blocks.
    pub count: u64,
    /// Whether it writes `buffer` (else it fills it).
    pub write: bool,
    /// What to write, or room for what is read (whole blocks).
    pub buffer: Vec<u8>,
    /// The outcome, set by the backend.
    pub result: Result<(), BlockError>,
}

/// Whether a job on blocks `first..first + count` (a write if `write`)
/// must wait for one of `jobs` to finish: they share a block and one of
/// the two writes.
pub fn conflicts(jobs: &[Job], first: u64, count: u64, write: bool) -> bool {
    let end = first.saturating_add(count);
    jobs.iter().any(|job| {
        (write || job.write) && first < job.first.saturating_add(job.count) && job.first < end
    })
}

/// Most bytes of the jobs one batch holds (a request of
/// [`block::MAX_BLOCKS_PER_REQUEST`] 4 KiB blocks always fits alone).
pub const BATCH_BYTES: usize = 128 * 1024;

/// What became of a request taken: answered already, or a job in the batch.
enum Outcome {
    Done(Status),
    Job(usize),
}

/// Job buffers a session keeps for reuse.
const SPARE_BUFFERS: usize = 4;

/// Refusals logged per session; a client sending garbage cannot flood the log.
pub const REFUSALS_LOGGED: u32 = 8;

/// Most requests of one session taken in one pass over the sessions
/// (the rest wait for the next pass, so a flood cannot starve the others).
pub const REQUESTS_PER_PASS: usize = 16;

/// One session's state.
pub struct BlockSession {
    stream: ServerStream,
    /// Buffers of finished jobs, kept for the next ones.
    spare: Vec<Vec<u8>>,
    /// Whether a batch of several jobs was logged already.
    batch_logged: bool,
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

    /// A buffer of `length` bytes for a job: a spare one reused (its old
    /// bytes are the same session's and are overwritten before anyone
    /// sees them) or a new one.
    fn buffer(session: &mut BlockSession, length: usize) -> Result<Vec<u8>, BlockError> {
        let mut buffer = session.spare.pop().unwrap_or_default();
        if buffer.len() < length {
            buffer
                .try_reserve(length - buffer.len())
                .map_err(|_| BlockError::Io)?;
            buffer.resize(length, 0);
        }
        buffer.truncate(length);
        Ok(buffer)
    }

    /// Runs the batch's jobs on the device, copies what the reads brought
    /// into their packets, and acknowledges every request taken so far in
    /// the order taken. False if the ack ring broke.
    fn finish(
        &mut self,
        label: &str,
        session: &mut BlockSession,
        taken: &mut Vec<(arbor::packet_stream::Request, Outcome)>,
        jobs: &mut Vec<Job>,
    ) -> bool {
        if jobs.len() > 1 && !session.batch_logged {
            session.batch_logged = true;
            log!("\"{label}\": {} requests on the device at once", jobs.len());
        }
        if !jobs.is_empty() {
            self.backend.run_jobs(jobs);
        }
        let mut intact = true;
        for (request, outcome) in taken.drain(..) {
            let status = match outcome {
                Outcome::Done(status) => status,
                Outcome::Job(index) => match (jobs.get(index), request.payload()) {
                    (Some(job), Ok(packet)) => match job.result {
                        Ok(()) if job.write => Status::OK,
                        Ok(()) => match session.stream.stream.write(packet, 0, &job.buffer) {
                            Ok(()) => Status::OK,
                            Err(_) => BlockError::Io.status(),
                        },
                        Err(error) => error.status(),
                    },
                    _ => BlockError::Io.status(),
                },
            };
            if intact && session.stream.stream.acknowledge(request, status).is_err() {
                log!("\"{label}\": refused: broken ack ring; its requests are ignored from now on");
                session.broken = true;
                intact = false;
            }
        }
        for job in jobs.drain(..) {
            if session.spare.len() < SPARE_BUFFERS {
                session.spare.push(job.buffer);
            }
        }
        intact
    }

    /// Serves up to [`REQUESTS_PER_PASS`] of the session's requests; true
    /// if it stopped at that limit (more may be waiting). Reads and writes
    /// gather into one batch for the device (several on its queue at
    /// once) until one conflicts with the batch, the batch is full, or a
    /// flush must wait for it; refusals are logged and answered in order.
    fn drain(&mut self, label: &str, session: &mut BlockSession) -> bool {
        if session.broken {
            return false;
        }
        let info = self.info();
        // Payloads of the requests served in this pass.
        let mut payloads: [(u64, u64); REQUESTS_PER_PASS] = [(0, 0); REQUESTS_PER_PASS];
        let (mut count, mut served) = (0, 0);
        let mut taken = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        let mut batch_bytes = 0;
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
            let refusal = |why: &str, session: &mut BlockSession| {
                Self::refused(label, session, &request, why);
            };
            let (offset, length) = match request.payload() {
                Ok(packet) => (packet.offset(), packet.length()),
                Err(_) => {
                    refusal("payload outside the shared buffer", session);
                    taken.push((request, Outcome::Done(Status::BAD_DESCRIPTOR)));
                    continue;
                }
            };
            let range = (offset, length as u64);
            let decoded =
                block::decode_request(request.opcode(), request.argument(), length, &info);
            let outcome = match decoded {
                Err(error) => {
                    refusal(&format!("{error:?}"), session);
                    Outcome::Done(error.status())
                }
                Ok(_) if overlaps(&payloads[..served], range.0, range.1) => {
                    refusal("payload overlapping another request in flight", session);
                    Outcome::Done(Status::BAD_DESCRIPTOR)
                }
                Ok(Request::Read { first, count } | Request::Write { first, count }) => {
                    payloads[served] = range;
                    served += 1;
                    let write = request.opcode() == block::op::WRITE;
                    if conflicts(&jobs, first, count, write) || batch_bytes + length > BATCH_BYTES {
                        if !self.finish(label, session, &mut taken, &mut jobs) {
                            let _ = session.stream.stream.acknowledge(request, Status::FAILED);
                            return false;
                        }
                        batch_bytes = 0;
                    }
                    match Self::buffer(session, length) {
                        Ok(mut buffer) => {
                            let stream = &session.stream.stream;
                            let filled = !write
                                || request.payload().is_ok_and(|packet| {
                                    stream.read(packet, 0, &mut buffer).is_ok()
                                });
                            if !filled {
                                Outcome::Done(BlockError::Io.status())
                            } else {
                                batch_bytes += length;
                                jobs.push(Job {
                                    first,
                                    count,
                                    write,
                                    buffer,
                                    result: Err(BlockError::Io),
                                });
                                Outcome::Job(jobs.len() - 1)
                            }
                        }
                        Err(error) => Outcome::Done(error.status()),
                    }
                }
                Ok(Request::Flush) => {
                    // Every write taken before it first.
                    payloads[served] = range;
                    served += 1;
                    if !self.finish(label, session, &mut taken, &mut jobs) {
                        let _ = session.stream.stream.acknowledge(request, Status::FAILED);
                        return false;
                    }
                    batch_bytes = 0;
                    Outcome::Done(match self.backend.flush() {
                        Ok(()) => Status::OK,
                        Err(error) => error.status(),
                    })
                }
                Ok(Request::Info) => {
                    payloads[served] = range;
                    served += 1;
                    let stream = &session.stream.stream;
                    let written = request
                        .payload()
                        .is_ok_and(|packet| stream.write(packet, 0, &info.to_bytes()).is_ok());
                    Outcome::Done(if written {
                        Status::OK
                    } else {
                        BlockError::Io.status()
                    })
                }
            };
            taken.push((request, outcome));
        }
        let answered = !taken.is_empty();
        self.finish(label, session, &mut taken, &mut jobs);
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
            spare: Vec::new(),
            batch_logged: false,
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

    fn job(first: u64, count: u64, write: bool) -> Job {
        Job {
            first,
            count,
            write,
            buffer: Vec::new(),
            result: Ok(()),
        }
    }

    #[test]
    fn jobs_sharing_a_written_block_never_run_together() {
        let batch = [job(10, 4, false), job(20, 2, true)];
        // Reads of blocks another job reads may run beside it.
        assert!(!conflicts(&batch, 12, 8, false));
        // A write of a block being read, or a read of one being written, waits.
        assert!(conflicts(&batch, 13, 1, true));
        assert!(conflicts(&batch, 21, 5, false));
        // Neighbours do not conflict; nor does anything with an empty batch.
        assert!(!conflicts(&batch, 14, 6, true));
        assert!(!conflicts(&batch, 22, 3, true));
        assert!(!conflicts(&[], 0, u64::MAX, true));
        assert!(!conflicts(&batch, u64::MAX - 1, u64::MAX, true));
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
