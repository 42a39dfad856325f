//! fs_garbage: a hostile FileSystem client. It opens a session like any
//! client, then submits packets of random length filled with random bytes
//! under random opcodes (and some well-formed headers with hostile fields:
//! huge counts, handles never opened, paths climbing above the root).
//! Every one must come back acknowledged with an error status; it logs how
//! many were refused and whether any was accepted, then makes one honest
//! request to show the server still serves it, and exits 0 only if all held.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use arbor::packet_stream::{Opcode, Status};
use arbor_sessions::bulk::{ClientStream, StreamArgs};
use arbor_sessions::file_system::{HEADER_SIZE, Header, Request, encode_request, op};
use arbor_sessions::{client, log};

arbor::entry!(run);

/// Garbage packets to send.
const ROUNDS: u32 = 300;

use arbor::random::XorShift;

fn run(_argument: u64) {
    let args = StreamArgs {
        payload_len: 8192,
        entries: 4,
    };
    let mut stream = match ClientStream::open("FileSystem", "", args) {
        Ok(stream) => stream,
        Err(error) => {
            log!("FileSystem session: {error}");
            return client::exit(1);
        }
    };
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let (mut refused, mut accepted) = (0u32, 0u32);
    for round in 0..ROUNDS {
        let length = (rng.next() % 2048) as usize;
        let mut bytes = vec![0u8; length];
        for byte in bytes.iter_mut() {
            *byte = rng.next() as u8;
        }
        let opcode = if round % 3 == 0 {
            // A header that parses, with fields that must not be believed.
            let header = Header {
                handle: rng.next() as u32,
                flags: 0,
                position: rng.next(),
                count: (rng.next() % 100_000) as u32,
                path_len: 0,
                second_len: 0,
            };
            if let Some(start) = bytes.get_mut(..HEADER_SIZE) {
                start.copy_from_slice(&header.to_bytes());
            }
            [op::READ, op::WRITE, op::TRUNCATE, op::CLOSE][(rng.next() % 4) as usize]
        } else {
            Opcode((rng.next() % 40) as u16)
        };
        let status = exchange(&mut stream, opcode, &bytes);
        match status {
            Some(Status::OK) => accepted += 1,
            Some(_) => refused += 1,
            None => return client::exit(1),
        }
    }
    // Paths that climb above the root.
    let mut escape = vec![0u8; 64];
    let escaped = encode_request(
        &Request::Stat {
            path: b"/../../etc",
        },
        &mut escape,
    )
    .is_ok()
        && exchange(&mut stream, op::STAT, &escape) != Some(Status::OK);
    log!(
        "{ROUNDS} garbage requests: {refused} refused, {accepted} accepted; escape refused: {escaped}"
    );
    // The server still answers this session honestly.
    let mut sync = vec![0u8; HEADER_SIZE];
    let synced = encode_request(&Request::Sync, &mut sync).is_ok()
        && exchange(&mut stream, op::SYNC, &sync) == Some(Status::OK);
    log!(
        "after the garbage, sync answered {}",
        if synced { "OK" } else { "an error" }
    );
    client::exit(i32::from(!(synced && escaped)));
}

/// One packet with `bytes`; the status it came back with, `None` if the
/// stream itself failed.
fn exchange(stream: &mut ClientStream, opcode: Opcode, bytes: &[u8]) -> Option<Status> {
    let packet = match stream.stream.alloc_packet(bytes.len()) {
        Ok(packet) => packet,
        Err(error) => {
            log!("no payload room: {error:?}");
            return None;
        }
    };
    if stream.stream.write(&packet, 0, bytes).is_err() {
        return None;
    }
    match stream.exchange(packet, opcode, 0) {
        Ok(ack) => {
            let status = ack.status;
            let _ = stream.stream.free_packet(ack.packet);
            Some(status)
        }
        Err(error) => {
            log!("exchange failed: {error}");
            None
        }
    }
}
