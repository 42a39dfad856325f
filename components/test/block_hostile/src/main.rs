//! block_hostile: a Block client that does not play by the rules, and (with
//! `honest: true`) one that does, side by side on the same block server.
//!
//! The hostile one sets its session up by hand and then writes straight
//! into the shared rings, bypassing the honest packet-stream client: two
//! reads whose payloads overlap in one batch, a flood of descriptors from
//! [`block_hostile::garbage`] (absurd blocks and counts, payloads outside
//! the buffer, unknown opcodes) with a signal after each, then a submit
//! index far beyond the ring. It checks every garbage descriptor comes
//! back refused, that of the overlapping pair only the first is served,
//! and that after the bad index the server answers nothing more; it exits
//! 0 only if all held. The honest one writes and reads back blocks all the
//! while and exits 0 only if every round came back intact.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use arbor::abi::{CapSlot, ObjectKind, slot};
use arbor::packet_stream::{SharedRegion, Status};
use arbor::random::XorShift;
use arbor::{slots, sys};
use arbor_sessions::block::{INFO_SIZE, Info, op};
use arbor_sessions::bulk::{ClientStream, StreamArgs, StreamReply, StreamRequest, session_cost};
use arbor_sessions::client::{SESSION_CAPS, call, open_session_with_caps};
use arbor_sessions::{Interface, client, env, log};
use block_hostile::{Config, KINDS, Raw, garbage};

arbor::entry!(run);

/// Garbage descriptors in the flood.
const FLOOD: u64 = 2000;
/// Rounds of the honest client.
const HONEST_ROUNDS: u64 = 300;
/// Ring entries and payload bytes of the hostile session.
const ENTRIES: u32 = 16;
const PAYLOAD: u32 = 16 * 1024;
/// The packet stream's layout (see `arbor::packet_stream`).
const SUBMIT_HEAD: usize = 0;
const ACK_HEAD: usize = 128;
const ACK_TAIL: usize = 192;
const RINGS: usize = 256;
const DESCRIPTOR: usize = 32;

fn run(_argument: u64) {
    let config: Config = match env::config() {
        Ok(config) => config,
        Err(error) => {
            log!("config: {error}");
            return client::exit(2);
        }
    };
    let result = if config.honest { honest() } else { hostile() };
    match result {
        Ok(()) => client::exit(0),
        Err(error) => {
            log!("failed: {error}");
            client::exit(1);
        }
    }
}

fn honest() -> Result<(), String> {
    let mut stream = ClientStream::open(
        "Block",
        "",
        StreamArgs {
            payload_len: 8192,
            entries: 4,
        },
    )
    .map_err(|e| format!("Block session: {e}"))?;
    let mut block = vec![0u8; 512];
    for round in 0..HONEST_ROUNDS {
        let index = 100 + round % 50;
        for (i, byte) in block.iter_mut().enumerate() {
            *byte = (round as usize * 31 + i) as u8;
        }
        let packet = stream
            .stream
            .alloc_packet(512)
            .map_err(|e| format!("{e:?}"))?;
        stream
            .stream
            .write(&packet, 0, &block)
            .map_err(|e| format!("{e:?}"))?;
        let ack = stream
            .exchange(packet, op::WRITE, index)
            .map_err(|e| format!("write round {round}: {e}"))?;
        let _ = stream.stream.free_packet(ack.packet);
        if ack.status != Status::OK {
            return Err(format!("write round {round}: status {}", ack.status.0));
        }
        let packet = stream
            .stream
            .alloc_packet(512)
            .map_err(|e| format!("{e:?}"))?;
        let ack = stream
            .exchange(packet, op::READ, index)
            .map_err(|e| format!("read round {round}: {e}"))?;
        let mut back = [0u8; 512];
        let copied = stream.stream.read(&ack.packet, 0, &mut back);
        let _ = stream.stream.free_packet(ack.packet);
        if ack.status != Status::OK || copied.is_err() || back[..] != block[..] {
            return Err(format!("read round {round}: not what was written"));
        }
    }
    log!("{HONEST_ROUNDS} rounds written and read back intact");
    pipelined(&mut stream)
}

/// Blocks the pipelined rounds use, each written and read with several
/// requests in flight at once.
const PIPELINED: u64 = 4;

/// Submits [`PIPELINED`] writes of different blocks at once, then as many
/// reads of them at once, and checks every answer by its tag.
fn pipelined(stream: &mut ClientStream) -> Result<(), String> {
    let pattern = |block: u64, i: usize| (block as usize * 7 + i * 3) as u8;
    let mut tags = alloc::vec::Vec::new();
    for block in 200..200 + PIPELINED {
        let data: alloc::vec::Vec<u8> = (0..512).map(|i| pattern(block, i)).collect();
        let packet = stream
            .stream
            .alloc_packet(512)
            .map_err(|e| format!("{e:?}"))?;
        stream
            .stream
            .write(&packet, 0, &data)
            .map_err(|e| format!("{e:?}"))?;
        tags.push(
            stream
                .submit(packet, op::WRITE, block)
                .map_err(|e| format!("{e}"))?,
        );
    }
    stream.wake_server();
    for _ in 0..PIPELINED {
        let ack = stream.wait_acknowledgement().map_err(|e| format!("{e}"))?;
        let _ = stream.stream.free_packet(ack.packet);
        if ack.status != Status::OK || !tags.contains(&ack.tag) {
            return Err(format!(
                "pipelined write {}: status {}",
                ack.tag, ack.status.0
            ));
        }
    }
    let mut reads = alloc::vec::Vec::new();
    for block in 200..200 + PIPELINED {
        let packet = stream
            .stream
            .alloc_packet(512)
            .map_err(|e| format!("{e:?}"))?;
        reads.push((
            stream
                .submit(packet, op::READ, block)
                .map_err(|e| format!("{e}"))?,
            block,
        ));
    }
    stream.wake_server();
    for _ in 0..PIPELINED {
        let ack = stream.wait_acknowledgement().map_err(|e| format!("{e}"))?;
        let block = reads
            .iter()
            .find(|(tag, _)| *tag == ack.tag)
            .map(|(_, b)| *b);
        let mut back = [0u8; 512];
        let copied = stream.stream.read(&ack.packet, 0, &mut back);
        let _ = stream.stream.free_packet(ack.packet);
        let intact = block.is_some_and(|block| {
            back.iter()
                .enumerate()
                .all(|(i, byte)| *byte == pattern(block, i))
        });
        if ack.status != Status::OK || copied.is_err() || !intact {
            return Err(format!("pipelined read {}: not what was written", ack.tag));
        }
    }
    log!("{PIPELINED} writes, then {PIPELINED} reads, in flight at once: read back intact");
    Ok(())
}

fn hostile() -> Result<(), String> {
    let mut raw = RawSession::open()?;
    // One honest request first: the device's geometry.
    raw.submit(&Raw {
        offset: 0,
        length: INFO_SIZE as u32,
        opcode: op::INFO.0,
        argument: 0,
    })?;
    raw.signal();
    let status = raw.wait_acks(1)?;
    let mut bytes = [0u8; INFO_SIZE];
    raw.region
        .read_at(raw.payload_offset, &mut bytes)
        .map_err(|e| format!("{e:?}"))?;
    let info = Info::from_bytes(&bytes).ok_or("the server's Info made no sense")?;
    if status[0] != Status::OK.0 {
        return Err(String::from("Info refused"));
    }
    // Two reads into overlapping payloads, taken in one batch.
    for (offset, argument) in [(0, 0), (512, 2)] {
        raw.stage(&Raw {
            offset,
            length: 1024,
            opcode: op::READ.0,
            argument,
        })?;
    }
    raw.publish()?;
    raw.signal();
    let pair = raw.wait_acks(2)?;
    let overlap_held = pair[0] == Status::OK.0 && pair[1] != Status::OK.0;
    log!(
        "overlapping payloads: the first {}, the second {}",
        if pair[0] == Status::OK.0 {
            "served"
        } else {
            "refused"
        },
        if pair[1] == Status::OK.0 {
            "served"
        } else {
            "refused"
        }
    );
    // The flood: a signal after every descriptor, the ring kept full.
    let mut rng = XorShift(0x5eed_b10c_dead_beef);
    let (mut refused, mut accepted) = (0u64, 0u64);
    let mut sent = 0;
    while sent < FLOOD {
        let batch = (FLOOD - sent).min(u64::from(ENTRIES));
        for i in 0..batch {
            let descriptor = garbage(sent + i, rng.next(), info.block_count, raw.payload_len);
            raw.submit(&descriptor)?;
            raw.signal();
        }
        for status in raw.wait_acks(batch as usize)? {
            if status == Status::OK.0 {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        sent += batch;
    }
    log!("{FLOOD} garbage requests ({KINDS} kinds): {refused} refused, {accepted} accepted");
    // A submit index far beyond the ring.
    raw.head += 1000;
    raw.region
        .write_at(SUBMIT_HEAD, &raw.head.to_le_bytes())
        .map_err(|e| format!("{e:?}"))?;
    for _ in 0..10 {
        raw.signal();
    }
    let silent = raw.wait_acks(1).is_err();
    log!(
        "after a ring index out of range: {}",
        if silent {
            "no answer, as expected"
        } else {
            "an answer"
        }
    );
    if accepted == 0 && refused == FLOOD && overlap_held && silent {
        Ok(())
    } else {
        Err(String::from(
            "the server accepted what it should have refused",
        ))
    }
}

/// The hostile session: its region, its own indices, its notifications.
struct RawSession {
    region: SharedRegion,
    payload_offset: usize,
    /// Bytes of the payload area (to the region's page-rounded end).
    payload_len: u64,
    head: u64,
    ack_tail: u64,
    wake: CapSlot,
    notification: CapSlot,
}

impl RawSession {
    /// Opens the session and connects its stream by hand (as
    /// `ClientStream` does, minus every check on this side).
    fn open() -> Result<RawSession, String> {
        let args = StreamArgs {
            payload_len: PAYLOAD,
            entries: ENTRIES,
        };
        let cost = session_cost(&args).map_err(|e| format!("{e}"))?;
        let session =
            open_session_with_caps("Block", "", &args, cost.ram, SESSION_CAPS + cost.caps, None)
                .map_err(|e| format!("Block session: {e}"))?;
        let receive = slots::allocate().map_err(|e| format!("{e:?}"))?;
        let (reply, got) = call::<_, StreamReply>(
            session.cap,
            Interface::Session,
            &StreamRequest::Dataspace,
            None,
            Some(receive),
        )
        .map_err(|e| format!("dataspace: {e}"))?;
        let StreamReply::Dataspace { region_len } = reply else {
            return Err(String::from("no dataspace"));
        };
        if !got {
            return Err(String::from("no dataspace"));
        }
        let region =
            SharedRegion::attach(receive, region_len as usize).map_err(|e| format!("{e:?}"))?;
        let notification = slots::allocate().map_err(|e| format!("{e:?}"))?;
        sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)
            .map_err(|e| format!("{e:?}"))?;
        let wake = slots::allocate().map_err(|e| format!("{e:?}"))?;
        let (reply, _) = call::<_, StreamReply>(
            session.cap,
            Interface::Session,
            &StreamRequest::SetNotification,
            Some(notification),
            Some(wake),
        )
        .map_err(|e| format!("notification: {e}"))?;
        if reply != StreamReply::Signal {
            return Err(String::from("no wake-up capability"));
        }
        let rings_end = RINGS + 2 * ENTRIES as usize * DESCRIPTOR;
        let payload_offset = rings_end.div_ceil(64) * 64;
        Ok(RawSession {
            payload_len: region_len.saturating_sub(payload_offset as u64),
            region,
            payload_offset,
            head: 0,
            ack_tail: 0,
            wake,
            notification,
        })
    }

    fn submit(&mut self, raw: &Raw) -> Result<(), String> {
        self.stage(raw)?;
        self.publish()
    }

    /// Writes a descriptor into the next ring slot without publishing it.
    fn stage(&mut self, raw: &Raw) -> Result<(), String> {
        let at = RINGS + (self.head % u64::from(ENTRIES)) as usize * DESCRIPTOR;
        for (i, word) in raw.words(self.head).into_iter().enumerate() {
            self.region
                .write_at(at + 8 * i, &word.to_le_bytes())
                .map_err(|e| format!("{e:?}"))?;
        }
        self.head += 1;
        Ok(())
    }

    /// Publishes every staged descriptor at once.
    fn publish(&mut self) -> Result<(), String> {
        self.region
            .write_at(SUBMIT_HEAD, &self.head.to_le_bytes())
            .map_err(|e| format!("{e:?}"))
    }

    fn signal(&self) {
        let _ = sys::signal(self.wake);
    }

    fn word(&self, at: usize) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        self.region
            .read_at(at, &mut bytes)
            .map_err(|e| format!("{e:?}"))?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The statuses of the next `count` acknowledgements, waiting for them
    /// (an error when they do not come within about a second).
    fn wait_acks(&mut self, count: usize) -> Result<alloc::vec::Vec<u16>, String> {
        let mut statuses = alloc::vec::Vec::new();
        let mut idle = 0;
        while statuses.len() < count {
            let head = self.word(ACK_HEAD)?;
            if head == self.ack_tail {
                if idle == 5 {
                    return Err(format!("{} of {count} answers came", statuses.len()));
                }
                idle += 1;
                let _ = sys::wait_timeout(self.notification, 200);
                continue;
            }
            let at = RINGS
                + ENTRIES as usize * DESCRIPTOR
                + (self.ack_tail % u64::from(ENTRIES)) as usize * DESCRIPTOR;
            statuses.push((self.word(at + 8)? >> 48) as u16);
            self.ack_tail += 1;
            self.region
                .write_at(ACK_TAIL, &self.ack_tail.to_le_bytes())
                .map_err(|e| format!("{e:?}"))?;
        }
        Ok(statuses)
    }
}
