//! The Block session as fat_fs's [`BlockDevice`]: one packet per request
//! (a block, or up to [`MAX_READ`] bytes of consecutive blocks for long
//! reads), submitted and waited for. A long read that continues the
//! previous one reads ahead ([`fat_fs::readahead`]) up to [`READ_AHEAD`]
//! bytes, in [`MAX_READ`] requests sent together: the answers' packets are
//! kept, and the next reads of their blocks are copied from them. The
//! geometry comes from the server's Info answer, checked
//! ([`Info::from_bytes`]) before it is believed.

use alloc::vec::Vec;
use arbor::packet_stream::{Client, Opcode, Packet, Status};
use arbor_sessions::block::{BlockError, INFO_SIZE, Info, MAX_BLOCKS_PER_REQUEST, op};
use arbor_sessions::bulk::{BulkError, ClientStream, StreamArgs};
use arbor_sessions::file_system::ReadTarget;
use fat_fs::cache::{BlockDevice, DeviceError};
use fat_fs::readahead::{Plan, ReadAhead};

/// The longest read, in one packet.
pub const MAX_READ: u32 = 128 * 1024;
/// How far ahead a sequential reader is read (whole [`MAX_READ`] requests,
/// sent together).
pub const READ_AHEAD: u32 = 4 * MAX_READ;
/// Bytes of the session's payload area: the read-ahead packets kept, and
/// room for block requests beside them.
pub const PAYLOAD: u32 = READ_AHEAD + 4096;

/// A Block session.
pub struct BlockClient {
    stream: ClientStream,
    info: Info,
    ahead: ReadAhead,
    /// The acknowledged packets that hold `ahead`'s blocks: (first block,
    /// blocks, packet), in order.
    ahead_packets: Vec<(u64, u64, Packet)>,
}

/// Times one request is retried on a new session.
const MAX_RECONNECTS: u32 = 3;
/// Tries to open a new session while the block server restarts, and the
/// pause between them.
const RECONNECT_ATTEMPTS: u32 = 100;
const RECONNECT_PAUSE_MS: u64 = 20;

/// Why one exchange failed.
enum Failure {
    /// The server died with the request unanswered.
    ServerGone,
    /// Anything else: the request failed.
    Refused,
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
                payload_len: PAYLOAD,
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
            ahead: ReadAhead::default(),
            ahead_packets: Vec::new(),
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

    /// One request on `buffer`: sent first if `send`, filled from the
    /// answer otherwise. If the block server died with it unanswered, the
    /// session is replaced by a new one to the restarted server (which
    /// must report the same geometry) and the request is made again:
    /// reads and writes of whole blocks may be repeated safely.
    fn exchange(
        &mut self,
        opcode: Opcode,
        argument: u64,
        buffer: &mut [u8],
        send: bool,
    ) -> Result<(), DeviceError> {
        let len = buffer.len();
        if send {
            self.exchange_with(opcode, argument, buffer, len, &mut |_, _| true, false)
        } else {
            self.exchange_with(
                opcode,
                argument,
                &[],
                len,
                &mut |client, packet| client.read(packet, 0, buffer).is_ok(),
                false,
            )
        }
        .map(drop)
    }

    /// Lets the read-ahead packet go (its blocks were used up or written).
    fn drop_ahead(&mut self) {
        self.ahead.hold(None);
        for (_, _, packet) in self.ahead_packets.drain(..) {
            let _ = self.stream.stream.free_packet(packet);
        }
    }

    /// Copies blocks `[first, first + len / block size)` from the
    /// read-ahead packets to `target` at `at`, and lets go of the packets
    /// used up; false if they are not all held or a copy failed.
    fn copy_ahead<T: ReadTarget + ?Sized>(
        &mut self,
        first: u64,
        len: usize,
        target: &mut T,
        at: usize,
    ) -> bool {
        let size = self.block_size();
        let end = first + (len / size) as u64;
        let mut copied = 0;
        for (held_first, held_blocks, packet) in &self.ahead_packets {
            let from = first.max(*held_first);
            let to = end.min(held_first + held_blocks);
            if from >= to {
                continue;
            }
            let bytes = (to - from) as usize * size;
            let put = target.put_from(
                at + (from - first) as usize * size,
                &self.stream.stream,
                packet,
                (from - held_first) as usize * size,
                bytes,
            );
            if put.is_err() {
                return false;
            }
            copied += bytes;
        }
        while let Some((held_first, held_blocks, _)) = self.ahead_packets.first() {
            if held_first + held_blocks > end {
                break;
            }
            let (_, _, packet) = self.ahead_packets.remove(0);
            let _ = self.stream.stream.free_packet(packet);
        }
        // What is still held: the packets left (consecutive).
        let held = match (self.ahead_packets.first(), self.ahead_packets.last()) {
            (Some((held_first, _, _)), Some((last_first, last_blocks, _))) => {
                Some((*held_first, last_first + last_blocks - held_first))
            }
            _ => None,
        };
        self.ahead.hold(held);
        copied == len
    }

    /// Reads `fetch` blocks from `first` in requests of at most
    /// [`BlockDevice::max_blocks_per_read`] blocks, sent together; the
    /// first `len` bytes go to `target` at `at`, the packets are kept as
    /// the read-ahead. False if any request failed (nothing is kept then).
    fn fetch_ahead<T: ReadTarget + ?Sized>(
        &mut self,
        first: u64,
        fetch: u64,
        len: usize,
        target: &mut T,
        at: usize,
    ) -> bool {
        let size = self.block_size() as u64;
        let per_request = self.max_blocks_per_read();
        let mut tags: Vec<(u64, u64, u64)> = Vec::new();
        let mut ok = tags
            .try_reserve(fetch.div_ceil(per_request) as usize)
            .is_ok();
        let mut next = first;
        while ok && next < first + fetch {
            let blocks = per_request.min(first + fetch - next);
            let submitted = self
                .stream
                .stream
                .alloc_packet((blocks * size) as usize)
                .map_err(BulkError::Stream)
                .and_then(|packet| self.stream.submit(packet, op::READ, next));
            match submitted {
                Ok(tag) => tags.push((tag, next, blocks)),
                Err(_) => ok = false,
            }
            next += blocks;
        }
        self.stream.wake_server();
        let mut answered = 0;
        while answered < tags.len() {
            let Ok(ack) = self.stream.wait_acknowledgement() else {
                // The session broke: what was asked is lost with it.
                self.drop_ahead();
                return false;
            };
            answered += 1;
            let Some(&(_, held_first, held_blocks)) =
                tags.iter().find(|(tag, _, _)| *tag == ack.tag)
            else {
                let _ = self.stream.stream.free_packet(ack.packet);
                continue;
            };
            if ack.status != Status::OK {
                ok = false;
            }
            if ok && self.ahead_packets.try_reserve(1).is_ok() {
                self.ahead_packets
                    .push((held_first, held_blocks, ack.packet));
            } else {
                ok = false;
                let _ = self.stream.stream.free_packet(ack.packet);
            }
        }
        self.ahead_packets
            .sort_unstable_by_key(|(held_first, _, _)| *held_first);
        if !ok || !self.copy_ahead(first, len, target, at) {
            self.drop_ahead();
            return false;
        }
        true
    }

    /// One request of a packet of `len` bytes (at least `send.len()`, at
    /// least 1) that starts with `send`; `receive` takes the answer from
    /// the acknowledged packet (false: it could not); the packet is
    /// returned if `keep`, freed otherwise. Repeated on a new session if
    /// the server died with it unanswered.
    fn exchange_with(
        &mut self,
        opcode: Opcode,
        argument: u64,
        send: &[u8],
        len: usize,
        receive: &mut dyn FnMut(&Client, &Packet) -> bool,
        keep: bool,
    ) -> Result<Option<Packet>, DeviceError> {
        let mut reconnects = 0;
        loop {
            match self.exchange_once(opcode, argument, send, len, receive, keep) {
                Err(Failure::ServerGone) if reconnects < MAX_RECONNECTS => {
                    reconnects += 1;
                    self.reconnect()?;
                }
                Err(_) => return Err(DeviceError),
                Ok(kept) => return Ok(kept),
            }
        }
    }

    /// Closes the dead session and opens a new one, waiting for the block
    /// server to come back (init restarts it).
    fn reconnect(&mut self) -> Result<(), DeviceError> {
        arbor_sessions::log!("the block server is gone; reconnecting");
        for _ in 0..RECONNECT_ATTEMPTS {
            match BlockClient::open() {
                Ok(new) if new.info == self.info => {
                    // What was read ahead goes with the old session.
                    let old = core::mem::replace(self, new);
                    let _ = old.stream.close();
                    arbor_sessions::log!("reconnected to the block server");
                    return Ok(());
                }
                Ok(new) => {
                    arbor_sessions::log!("the restarted block server reports another geometry");
                    let _ = new.stream.close();
                    return Err(DeviceError);
                }
                Err(_) => arbor_sessions::client::pause(RECONNECT_PAUSE_MS),
            }
        }
        arbor_sessions::log!("the block server did not come back");
        Err(DeviceError)
    }

    fn exchange_once(
        &mut self,
        opcode: Opcode,
        argument: u64,
        send: &[u8],
        len: usize,
        receive: &mut dyn FnMut(&Client, &Packet) -> bool,
        keep: bool,
    ) -> Result<Option<Packet>, Failure> {
        let stream = &mut self.stream;
        let packet = stream
            .stream
            .alloc_packet(len.max(send.len()).max(1))
            .map_err(|_| Failure::Refused)?;
        if !send.is_empty() && stream.stream.write(&packet, 0, send).is_err() {
            let _ = stream.stream.free_packet(packet);
            return Err(Failure::Refused);
        }
        let ack = match stream.exchange(packet, opcode, argument) {
            Ok(ack) => ack,
            Err(BulkError::ServerGone) => return Err(Failure::ServerGone),
            Err(_) => return Err(Failure::Refused),
        };
        let received = ack.status == Status::OK && receive(&stream.stream, &ack.packet);
        if received && keep {
            return Ok(Some(ack.packet));
        }
        let _ = stream.stream.free_packet(ack.packet);
        match (ack.status, received) {
            (Status::OK, true) => Ok(None),
            (status, _) => {
                if let Some(error) = BlockError::from_status(status) {
                    arbor_sessions::log!("Block request {} refused: {error:?}", opcode.0);
                }
                Err(Failure::Refused)
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
        if self.ahead.written(index) {
            self.drop_ahead();
        }
        let size = self.block_size();
        let mut block = alloc::vec::Vec::new();
        block.extend_from_slice(data.get(..size).ok_or(DeviceError)?);
        self.exchange(op::WRITE, index, &mut block, true)
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        self.exchange(op::FLUSH, 0, &mut [], true)
    }

    fn max_blocks_per_read(&self) -> u64 {
        (u64::from(MAX_READ) / u64::from(self.info.block_size).max(1))
            .clamp(1, MAX_BLOCKS_PER_REQUEST)
    }

    fn read_blocks(&mut self, first: u64, out: &mut [u8]) -> Result<(), DeviceError> {
        let size = self.block_size();
        let blocks = (out.len() / size) as u64;
        if !out.len().is_multiple_of(size) || blocks == 0 || blocks > self.max_blocks_per_read() {
            return Err(DeviceError);
        }
        self.exchange(op::READ, first, out, false)
    }

    fn read_blocks_to<T: ReadTarget + ?Sized>(
        &mut self,
        first: u64,
        len: usize,
        target: &mut T,
        at: usize,
        ahead: u64,
    ) -> Result<(), DeviceError> {
        let size = self.block_size();
        let blocks = (len / size) as u64;
        let limit = self.max_blocks_per_read();
        if !len.is_multiple_of(size) || blocks == 0 || blocks > limit {
            return Err(DeviceError);
        }
        // Never past the reader's extent (the file's run of clusters).
        let ahead_limit = (u64::from(READ_AHEAD) / size as u64).min(ahead);
        match self
            .ahead
            .plan(first, blocks, ahead_limit, self.info.block_count)
        {
            Plan::Held { last, .. } => {
                let copied = self.copy_ahead(first, len, target, at);
                if last || !copied {
                    self.drop_ahead();
                }
                if copied {
                    return Ok(());
                }
                // Not all held after all: read them plainly.
                self.exchange_with(
                    op::READ,
                    first,
                    &[],
                    len,
                    &mut |client, packet| target.put_from(at, client, packet, 0, len).is_ok(),
                    false,
                )
                .map(drop)
            }
            Plan::Fetch { blocks: fetch } if fetch > limit => {
                self.drop_ahead();
                if self.fetch_ahead(first, fetch, len, target, at) {
                    return Ok(());
                }
                // Through the plain request, which reconnects if the
                // server is gone.
                self.exchange_with(
                    op::READ,
                    first,
                    &[],
                    len,
                    &mut |client, packet| target.put_from(at, client, packet, 0, len).is_ok(),
                    false,
                )
                .map(drop)
            }
            Plan::Fetch { blocks: fetch } => {
                self.drop_ahead();
                let fetch_len = fetch as usize * size;
                let kept = self.exchange_with(
                    op::READ,
                    first,
                    &[],
                    fetch_len,
                    &mut |client, packet| target.put_from(at, client, packet, 0, len).is_ok(),
                    fetch > blocks,
                )?;
                if let Some(packet) = kept {
                    self.ahead.hold(Some((first, fetch)));
                    if self.ahead_packets.try_reserve(1).is_ok() {
                        self.ahead_packets.push((first, fetch, packet));
                    } else {
                        let _ = self.stream.stream.free_packet(packet);
                        self.ahead.hold(None);
                    }
                }
                Ok(())
            }
        }
    }
}
