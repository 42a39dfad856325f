//! Both ends against each other and against a hostile peer, on the host.

use super::client::PayloadAllocator;
use super::*;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::vec;

/// Page-aligned host memory standing in for the dataspace.
struct Memory {
    base: NonNull<u8>,
    layout: Layout,
}

impl Memory {
    fn new(len: usize) -> Memory {
        let layout = Layout::from_size_align(len, 4096).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("memory");
        Memory { base, layout }
    }

    /// One Pd's view of the memory.
    fn view(&self) -> SharedRegion {
        // SAFETY: aligned, lives as long as the test's `Memory`, and
        // touched only through views (or `scribble` below).
        unsafe { SharedRegion::from_raw(self.base, self.layout.size()) }
    }

    /// A hostile peer writes `value` into the word at `offset`.
    fn poke(&self, offset: usize, value: u64) {
        self.view().word(offset).store(value, Ordering::Relaxed);
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

use crate::random::XorShift;

const ENTRIES: u32 = 8;

fn stream(payload_len: usize) -> (Memory, Client, Server) {
    let len = Geometry::region_len_for(ENTRIES, payload_len).expect("geometry");
    let memory = Memory::new(len);
    let client = Client::new(memory.view(), ENTRIES).expect("client");
    let server = Server::new(memory.view(), ENTRIES).expect("server");
    (memory, client, server)
}

#[test]
fn geometry_is_checked() {
    assert_eq!(Geometry::new(1 << 20, 0), Err(Error::BadGeometry));
    assert_eq!(Geometry::new(1 << 20, 3), Err(Error::BadGeometry));
    assert_eq!(
        Geometry::new(1 << 20, MAX_ENTRIES * 2),
        Err(Error::BadGeometry)
    );
    assert_eq!(Geometry::new(256 + 2 * 8 * 32, 8), Err(Error::BadGeometry));
    let geometry = Geometry::new(4096, 8).expect("fits");
    assert_eq!(geometry.payload_len(), 4096 - 768);
    assert_eq!(Geometry::region_len_for(8, 100), Some(868));
    assert_eq!(Geometry::region_len_for(8, usize::MAX), None);
    // A region that does not match the geometry is refused.
    let memory = Memory::new(4096);
    // SAFETY: a shorter view of live, aligned test memory.
    let short = unsafe { SharedRegion::from_raw(memory.base, 100) };
    assert!(matches!(Client::new(short, 8), Err(Error::BadGeometry)));
    let misaligned = NonNull::new(memory.base.as_ptr().wrapping_add(8)).expect("non-null");
    // SAFETY: inside live test memory; `new` must refuse it before use.
    let misaligned = unsafe { SharedRegion::from_raw(misaligned, 4088) };
    assert!(matches!(
        Server::new(misaligned, 8),
        Err(Error::BadGeometry)
    ));
}

#[test]
fn round_trip() {
    let (_memory, mut client, mut server) = stream(4096);
    let packet = client.alloc_packet(5).expect("room");
    client.write(&packet, 0, b"hello").expect("fits");
    let signal = client.submit(packet, Opcode(7), 42, 1000).expect("room");
    assert_eq!(signal, Signal::Peer, "the ring was empty");

    let (request, _) = server.next_request().expect("sane").expect("one request");
    assert_eq!(
        (request.opcode(), request.tag(), request.argument()),
        (Opcode(7), 42, 1000)
    );
    let payload = request.payload().expect("valid");
    let mut buffer = [0; 5];
    server.read(payload, 0, &mut buffer).expect("fits");
    assert_eq!(&buffer, b"hello");
    server.write(payload, 0, b"HELLO").expect("fits");
    assert!(server.next_request().expect("sane").is_none());
    assert_eq!(server.acknowledge(request, Status::OK), Ok(Signal::Peer));

    let (ack, _) = client
        .next_acknowledgement()
        .expect("sane")
        .expect("one ack");
    assert_eq!(
        (ack.status, ack.opcode, ack.tag, ack.argument),
        (Status::OK, Opcode(7), 42, 1000)
    );
    client.read(&ack.packet, 0, &mut buffer).expect("fits");
    assert_eq!(&buffer, b"HELLO");
    assert!(client.next_acknowledgement().expect("sane").is_none());
    client.free_packet(ack.packet).expect("held");
    assert!(client.payload.allocations.is_empty());
}

#[test]
fn copies_stay_inside_their_packet() {
    let (_memory, mut client, _server) = stream(4096);
    let packet = client.alloc_packet(16).expect("room");
    assert_eq!(client.write(&packet, 10, &[0; 7]), Err(Error::OutOfPacket));
    assert_eq!(
        client.write(&packet, usize::MAX, &[0; 2]),
        Err(Error::OutOfPacket)
    );
    assert_eq!(client.read(&packet, 17, &mut []), Err(Error::OutOfPacket));
    assert_eq!(client.write(&packet, 16, &[]), Ok(()));
    // A packet of a bigger stream does not fit this one.
    let (_other_memory, mut other, _) = stream(1 << 16);
    let foreign = other.alloc_packet(60_000).expect("room");
    assert_eq!(client.write(&foreign, 0, &[1]), Err(Error::OutOfPacket));
}

#[test]
fn copies_from_one_stream_into_another_stay_inside_both_packets() {
    // `upstream`: a stream we are the client of (a file system's Block
    // session); `downstream`: one we serve (its FileSystem session).
    let (_up_memory, mut upstream, _) = stream(4096);
    let (_down_memory, mut down_client, downstream) = stream(4096);
    let from = upstream.alloc_packet(16).expect("room");
    upstream.write(&from, 0, b"0123456789abcdef").expect("fits");
    let to = down_client.alloc_packet(32).expect("room");
    assert_eq!(upstream.copy_to(&from, 4, &downstream, &to, 20, 8), Ok(()));
    let mut copied = [0; 8];
    down_client.read(&to, 20, &mut copied).expect("fits");
    assert_eq!(&copied, b"456789ab");
    assert_eq!(
        upstream.copy_to(&from, 10, &downstream, &to, 0, 7),
        Err(Error::OutOfPacket),
        "past the source packet"
    );
    assert_eq!(
        upstream.copy_to(&from, 0, &downstream, &to, 30, 3),
        Err(Error::OutOfPacket),
        "past the target packet"
    );
    assert_eq!(
        upstream.copy_to(&from, 0, &downstream, &to, usize::MAX, 2),
        Err(Error::OutOfPacket)
    );
    // A target packet too big for the served stream is refused.
    let (_other_memory, mut other, _) = stream(1 << 16);
    let foreign = other.alloc_packet(60_000).expect("room");
    assert_eq!(
        upstream.copy_to(&from, 0, &downstream, &foreign, 0, 1),
        Err(Error::OutOfPacket)
    );
}

#[test]
fn full_and_empty_rings_and_signals() {
    let (_memory, mut client, mut server) = stream(4096);
    for tag in 0..u64::from(ENTRIES) {
        let packet = client.alloc_packet(8).expect("room");
        let signal = client.submit(packet, Opcode(1), tag, 0).expect("room");
        let expected = if tag == 0 {
            Signal::Peer
        } else {
            Signal::NotNeeded
        };
        assert_eq!(signal, expected);
    }
    let packet = client.alloc_packet(8).expect("room");
    let (packet, error) = client.submit(packet, Opcode(1), 99, 0).expect_err("full");
    assert_eq!(error, Error::RingFull);
    // Taking from the full ring tells the client it may submit again.
    let (first, signal) = server.next_request().expect("sane").expect("request");
    assert_eq!(signal, Signal::Peer);
    let (second, signal) = server.next_request().expect("sane").expect("request");
    assert_eq!(signal, Signal::NotNeeded);
    assert_eq!(
        client.submit(packet, Opcode(1), 99, 0),
        Ok(Signal::NotNeeded)
    );
    assert_eq!(server.acknowledge(first, Status::OK), Ok(Signal::Peer));
    assert_eq!(
        server.acknowledge(second, Status::OK),
        Ok(Signal::NotNeeded)
    );
    let mut taken = 0;
    while let Some((request, _)) = server.next_request().expect("sane") {
        let _ = server.acknowledge(request, Status::OK).expect("room");
        taken += 1;
    }
    // The ack ring holds 8: two acked first, then six more fit; the
    // last request waits until the client takes acknowledgements.
    assert_eq!(taken, 6);
    let mut tags = vec![];
    while let Some((ack, _)) = client.next_acknowledgement().expect("sane") {
        tags.push(ack.tag);
        client.free_packet(ack.packet).expect("held");
    }
    assert_eq!(tags, (0..8).collect::<std::vec::Vec<_>>());
    let (last, _) = server.next_request().expect("sane").expect("the ninth");
    assert_eq!(last.tag(), 99);
    let _ = server.acknowledge(last, Status::OK).expect("room");
}

#[test]
fn wrap_around_over_many_rounds() {
    let (_memory, mut client, mut server) = stream(1024);
    let mut random = XorShift(99);
    let mut next_tag = 0u64;
    let mut expected_ack = 0u64;
    for _round in 0..2000 {
        let burst = 1 + random.next() % u64::from(ENTRIES);
        for _ in 0..burst {
            let length = (random.next() % 100) as usize;
            let Ok(packet) = client.alloc_packet(length) else {
                break;
            };
            let bytes = vec![next_tag as u8; length];
            client.write(&packet, 0, &bytes).expect("fits");
            match client.submit(packet, Opcode(2), next_tag, length as u64) {
                Ok(_) => next_tag += 1,
                Err((packet, error)) => {
                    assert_eq!(error, Error::RingFull);
                    client.free_packet(packet).expect("held");
                    break;
                }
            }
        }
        while let Some((request, _)) = server.next_request().expect("sane") {
            let payload = request.payload().expect("valid");
            let mut bytes = vec![0; payload.length()];
            server.read(payload, 0, &mut bytes).expect("fits");
            assert_eq!(bytes.len() as u64, request.argument());
            assert!(bytes.iter().all(|b| *b == request.tag() as u8));
            let _ = server.acknowledge(request, Status(16)).expect("room");
        }
        while let Some((ack, _)) = client.next_acknowledgement().expect("sane") {
            assert_eq!(ack.tag, expected_ack, "in order");
            assert_eq!(ack.status, Status(16));
            expected_ack += 1;
            client.free_packet(ack.packet).expect("held");
        }
    }
    assert_eq!(expected_ack, next_tag);
    assert!(
        next_tag > 4 * u64::from(ENTRIES) * 100,
        "the indices wrapped many times"
    );
    assert!(client.payload.allocations.is_empty());
}

#[test]
fn payload_allocator_first_fit_and_reuse() {
    let mut payload = PayloadAllocator::new(1024);
    let a = payload.allocate(100).expect("room"); // 128 bytes
    let b = payload.allocate(0).expect("room"); // 64 bytes, own offset
    let c = payload.allocate(64).expect("room");
    assert_eq!((a.offset, b.offset, c.offset), (0, 128, 192));
    assert_eq!(payload.allocate(1024), Err(Error::PayloadExhausted));
    let big = payload.allocate(768).expect("the rest");
    assert_eq!(big.offset, 256);
    assert_eq!(payload.allocate(1), Err(Error::PayloadExhausted));
    payload.free(a).expect("held");
    let d = payload.allocate(64).expect("hole");
    let e = payload.allocate(64).expect("hole");
    assert_eq!((d.offset, e.offset), (0, 64));
    assert_eq!(payload.allocate(1), Err(Error::PayloadExhausted));
    // A packet that is not a live allocation is refused.
    assert_eq!(
        payload.free(Packet {
            offset: 32,
            length: 1
        }),
        Err(Error::UnknownPacket)
    );
    for packet in [b, c, big, d, e] {
        payload.free(packet).expect("held");
    }
    assert!(payload.allocations.is_empty());
    assert_eq!(payload.allocate(1024).map(|p| p.offset), Ok(0));
}

#[test]
fn bad_descriptors_are_acknowledged_not_followed() {
    let (memory, mut client, mut server) = stream(4096);
    let payload_len = server.geometry().payload_len() as u64;
    let ring = server.geometry().submit_ring();
    let bad = [
        (payload_len, 1),
        (payload_len - 4, 5),
        (u64::MAX, u32::MAX),
        (u64::MAX - 2, 3),
        (0, u32::MAX),
    ];
    for (index, (offset, length)) in bad.iter().enumerate() {
        let descriptor = Descriptor {
            offset: *offset,
            length: *length,
            tag: index as u64,
            ..Descriptor::default()
        };
        let at = ring + index * DESCRIPTOR_SIZE;
        for (word, value) in descriptor.to_words().into_iter().enumerate() {
            memory.poke(at + 8 * word, value);
        }
    }
    memory.poke(SUBMIT_HEAD, bad.len() as u64);
    for _ in &bad {
        let (request, _) = server.next_request().expect("sane").expect("request");
        assert_eq!(request.payload(), Err(Error::BadDescriptor));
        let _ = server
            .acknowledge(request, Status::BAD_DESCRIPTOR)
            .expect("room");
    }
    // An exactly fitting range is fine.
    let edge = Descriptor {
        offset: payload_len - 4,
        length: 4,
        ..Descriptor::default()
    };
    for (word, value) in edge.to_words().into_iter().enumerate() {
        memory.poke(ring + 5 * DESCRIPTOR_SIZE + 8 * word, value);
    }
    memory.poke(SUBMIT_HEAD, 6);
    let (request, _) = server.next_request().expect("sane").expect("request");
    assert!(request.payload().is_ok());
    let _ = server.acknowledge(request, Status::OK).expect("room");
    // The client never submitted any of these: every ack is refused, and
    // its own allocator is untouched.
    let held = client.alloc_packet(10).expect("room");
    for _ in 0..6 {
        assert!(matches!(
            client.next_acknowledgement(),
            Err(Error::UnknownPacket)
        ));
    }
    assert_eq!(client.next_acknowledgement().map(|a| a.is_none()), Ok(true));
    client.free_packet(held).expect("still held");
}

#[test]
fn impossible_indices_are_reported() {
    let (memory, mut client, mut server) = stream(4096);
    // The submit head runs more than a ring ahead, or backwards.
    for head in [u64::from(ENTRIES) + 1, u64::MAX, 1 << 40] {
        memory.poke(SUBMIT_HEAD, head);
        assert!(matches!(
            server.next_request(),
            Err(Error::PeerIndexCorrupt)
        ));
    }
    memory.poke(SUBMIT_HEAD, 0);
    assert!(matches!(server.next_request(), Ok(None)));
    // The server's tail claims it took what was never submitted.
    memory.poke(SUBMIT_TAIL, 5);
    let packet = client.alloc_packet(1).expect("room");
    let (packet, error) = client.submit(packet, Opcode(0), 0, 0).expect_err("corrupt");
    assert_eq!(error, Error::PeerIndexCorrupt);
    client.free_packet(packet).expect("came back held");
    memory.poke(SUBMIT_TAIL, 0);
    // The ack head, likewise; and the client's ack tail as the server sees it.
    memory.poke(ACK_HEAD, 9);
    assert!(matches!(
        client.next_acknowledgement(),
        Err(Error::PeerIndexCorrupt)
    ));
    memory.poke(ACK_HEAD, 0);
    memory.poke(ACK_TAIL, 3);
    assert!(matches!(
        server.next_request(),
        Err(Error::PeerIndexCorrupt)
    ));
}

#[test]
fn forged_and_repeated_acknowledgements_are_refused() {
    let (memory, mut client, mut server) = stream(4096);
    let packet = client.alloc_packet(100).expect("room");
    let _ = client.submit(packet, Opcode(3), 7, 0).expect("room");
    let (request, _) = server.next_request().expect("sane").expect("request");
    let descriptor = request.descriptor;
    let _ = server.acknowledge(request, Status::OK).expect("room");
    let (ack, _) = client.next_acknowledgement().expect("sane").expect("ack");
    // The server repeats the ack, then acks with another length or tag.
    let ring = server.geometry().ack_ring();
    let forgeries = [
        descriptor,
        Descriptor {
            length: 4000,
            ..descriptor
        },
        Descriptor {
            tag: 8,
            ..descriptor
        },
    ];
    for (index, forged) in forgeries.iter().enumerate() {
        for (word, value) in forged.to_words().into_iter().enumerate() {
            memory.poke(ring + (1 + index) * DESCRIPTOR_SIZE + 8 * word, value);
        }
    }
    memory.poke(ACK_HEAD, 4);
    for _ in forgeries {
        assert!(matches!(
            client.next_acknowledgement(),
            Err(Error::UnknownPacket)
        ));
    }
    client.free_packet(ack.packet).expect("held once");
}

/// Both sides keep working while a hostile third party scribbles over
/// shared words: ring slots only (`indices: false`), or the indices
/// too. Returns (errors reported, requests served).
fn scribbled_stream(indices: bool, seed: u64) -> (u32, u32) {
    let (memory, mut client, mut server) = stream(2048);
    let first_word = if indices { 0 } else { CONTROL_SIZE / 8 };
    let words = server.geometry().payload_offset / 8 - first_word;
    let mut random = XorShift(seed);
    let (mut errors, mut requests) = (0, 0);
    let mut buffer = vec![0; 4096];
    for round in 0..20_000 {
        // Scribble now and then: a few words, sometimes near-plausible.
        if random.next().is_multiple_of(8) {
            for _ in 0..1 + random.next() % 4 {
                let word = first_word + (random.next() % words as u64) as usize;
                let value = match random.next() % 4 {
                    0 => random.next(),
                    1 => random.next() % 16,
                    2 => u64::MAX - random.next() % 16,
                    _ => random.next() % 4096,
                };
                memory.poke(word * 8, value);
            }
        }
        // The client keeps submitting and collecting.
        if let Ok(packet) = client.alloc_packet((random.next() % 300) as usize)
            && let Err((packet, _)) = client.submit(packet, Opcode(1), round, 0)
        {
            client.free_packet(packet).expect("came back held");
        }
        match client.next_acknowledgement() {
            Ok(Some((ack, _))) => client.free_packet(ack.packet).expect("held"),
            Ok(None) => {}
            Err(_) => errors += 1,
        }
        // The server takes whatever it is given.
        match server.next_request() {
            Ok(Some((request, _))) => {
                requests += 1;
                let status = match request.payload() {
                    Ok(packet) => {
                        let length = packet.length().min(buffer.len());
                        server
                            .read(packet, 0, &mut buffer[..length])
                            .expect("checked");
                        server.write(packet, 0, &buffer[..length]).expect("checked");
                        Status::OK
                    }
                    Err(_) => Status::BAD_DESCRIPTOR,
                };
                if server.acknowledge(request, status).is_err() {
                    errors += 1;
                }
            }
            Ok(None) => {}
            Err(_) => errors += 1,
        }
        // The client's allocations stay inside the area and disjoint.
        let allocations = &client.payload.allocations;
        for pair in allocations.windows(2) {
            assert!(pair[0].offset + pair[0].span <= pair[1].offset);
        }
        if let Some(last) = allocations.last() {
            assert!(last.offset + last.span <= client.geometry().payload_len() as u64);
        }
    }
    (errors, requests)
}

#[test]
fn scribbled_descriptors_are_caught_and_the_stream_goes_on() {
    for seed in [1, 0xDEAD_BEEF, 12345] {
        let (errors, requests) = scribbled_stream(false, seed);
        assert!(errors > 0, "forged descriptors were reported");
        // Each forged acknowledgement strands the packet it replaced (the
        // client cannot know whether the server still uses it), so the
        // payload area slowly fills; until then requests keep flowing.
        assert!(requests > 200, "requests kept flowing: {requests}");
    }
}

#[test]
fn scribbled_indices_break_the_session_cleanly() {
    for seed in [1, 0xDEAD_BEEF, 12345] {
        let (errors, _requests) = scribbled_stream(true, seed);
        assert!(errors > 100, "errors were reported: {errors}");
    }
}

/// Client and server on two threads, as they would be in two Pds.
#[test]
fn two_threads_stream_in_order() {
    let len = Geometry::region_len_for(ENTRIES, 4096).expect("geometry");
    let memory = Memory::new(len);
    const PACKETS: u64 = 20_000;
    // Both ends exist (indices zeroed) before either thread runs; the
    // memory outlives both threads, which the scope joins.
    let client = Client::new(memory.view(), ENTRIES).expect("client");
    let server = Server::new(memory.view(), ENTRIES).expect("server");
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut server = server;
            let mut served = 0;
            while served < PACKETS {
                match server.next_request().expect("honest client") {
                    Some((request, _)) => {
                        let packet = request.payload().expect("valid");
                        let mut word = [0; 8];
                        server.read(packet, 0, &mut word).expect("fits");
                        let value = u64::from_le_bytes(word);
                        assert_eq!(value, request.tag());
                        server
                            .write(packet, 0, &(value * 3).to_le_bytes())
                            .expect("fits");
                        let _ = server.acknowledge(request, Status::OK).expect("room");
                        served += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        });
        scope.spawn(move || {
            let mut client = client;
            let (mut sent, mut received) = (0, 0);
            while received < PACKETS {
                if sent < PACKETS
                    && let Ok(packet) = client.alloc_packet(8)
                {
                    client.write(&packet, 0, &sent.to_le_bytes()).expect("fits");
                    match client.submit(packet, Opcode(1), sent, 0) {
                        Ok(_) => sent += 1,
                        Err((packet, _)) => client.free_packet(packet).expect("held"),
                    }
                }
                match client.next_acknowledgement().expect("honest server") {
                    Some((ack, _)) => {
                        assert_eq!(ack.tag, received, "in order");
                        let mut word = [0; 8];
                        client.read(&ack.packet, 0, &mut word).expect("fits");
                        assert_eq!(u64::from_le_bytes(word), received * 3);
                        client.free_packet(ack.packet).expect("held");
                        received += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        });
    });
}
