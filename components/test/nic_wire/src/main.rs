//! nic_wire: a test Nic server that is a wire (a hub, really) between its
//! sessions. Every frame one session transmits goes to every other
//! session's next receive buffer; with its config it drops, corrupts or
//! follows frames with garbage ([`nic_wire::Faults`]).
//!
//! It serves through the server framework like any driver, and never
//! trusts a client: each session's streams are made here from the
//! session's donated quota, every descriptor's length is checked with
//! [`nic::check_transmit_frame`] before a byte is read, a bad one is
//! acknowledged with [`nic::FRAME_REFUSED`] and logged, and a client that
//! corrupts its ring indices loses its session's traffic, nobody else's.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use arbor::abi::CapSlot;
use arbor::packet_stream::{self, Request, Status};
use arbor::{slots, sys};
use arbor_sessions::bulk;
use arbor_sessions::nic::{
    self, MAX_FRAME_LEN, MacAddress, NicArgs, NicInfo, NicReply, NicRequest, ReceivedFrame,
    StreamKind,
};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::{SessionError, decode, env, log};
use nic_wire::{Config, Faults};

arbor::entry!(run);

/// The server's own notification bit every client's kick signals.
const KICK_BIT: u64 = 1;
/// The server's bookkeeping per session, beyond the shared memory.
const SESSION_OVERHEAD: u64 = 16 * 1024;

fn run(_argument: u64) {
    let config: Config = match env::config() {
        Ok(config) => config,
        Err(error) => {
            log!("config: {error}");
            arbor_sessions::client::exit(1);
            return;
        }
    };
    let error = serve(config);
    log!("stopped: {error}");
    arbor_sessions::client::exit(1);
}

fn serve(config: Config) -> SessionError {
    let server = match Server::new() {
        Ok(server) => server,
        Err(error) => return error,
    };
    let kick = match server.signal_cap(KICK_BIT) {
        Ok(cap) => cap,
        Err(error) => return error,
    };
    log!(
        "wire up (drop every {:?}, corrupt every {:?}, garbage every {:?})",
        config.drop_every,
        config.corrupt_every,
        config.garbage_every
    );
    let wire = Wire {
        kick,
        faults: Faults::new(config),
        passed: 0,
        refused: 0,
        frame: alloc::vec![0; MAX_FRAME_LEN],
    };
    server.serve(&[nic::SERVICE], wire)
}

/// One session: its two streams and the receive buffers it lent.
struct Port {
    args: NicArgs,
    mac: MacAddress,
    transmit: packet_stream::Server,
    receive: packet_stream::Server,
    transmit_dataspace: CapSlot,
    receive_dataspace: CapSlot,
    /// Receive buffers the client submitted, waiting for a frame.
    buffers: VecDeque<Request>,
    notification: Option<CapSlot>,
    /// The client broke its ring; the port carries nothing more.
    broken: bool,
}

struct Wire {
    kick: CapSlot,
    faults: Faults,
    passed: u64,
    refused: u64,
    frame: Vec<u8>,
}

/// A MAC address from the label: a stack that reconnects gets its old one.
fn mac_for(label: &str) -> MacAddress {
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let bytes = hash.to_le_bytes();
    // Locally administered, unicast.
    MacAddress([0x02, bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]])
}

fn stream_error(_: packet_stream::Error) -> SessionError {
    SessionError::BadRequest
}

impl Service for Wire {
    type Session = Port;
    type Reply = NicReply;

    fn create(
        &mut self,
        _service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<Port, SessionError> {
        let args: NicArgs = decode(args)?;
        args.check().map_err(|_| SessionError::BadRequest)?;
        let shared = args.shared_bytes().map_err(|_| SessionError::BadRequest)?;
        quota.require(Quota {
            ram: shared + SESSION_OVERHEAD,
            caps: nic::SERVER_CAPS,
        })?;
        let transmit_len = args
            .stream_len(StreamKind::Transmit)
            .map_err(|_| SessionError::BadRequest)?;
        let receive_len = args
            .stream_len(StreamKind::Receive)
            .map_err(|_| SessionError::BadRequest)?;
        let (transmit_dataspace, transmit_region) = bulk::new_shared_region(transmit_len)?;
        let (receive_dataspace, receive_region) = match bulk::new_shared_region(receive_len) {
            Ok(made) => made,
            Err(error) => {
                drop(transmit_region);
                let _ = sys::destroy(transmit_dataspace);
                slots::release(transmit_dataspace);
                return Err(error);
            }
        };
        let transmit = packet_stream::Server::new(transmit_region, args.transmit_entries)
            .map_err(stream_error)?;
        let receive = packet_stream::Server::new(receive_region, args.receive_entries)
            .map_err(stream_error)?;
        Ok(Port {
            args,
            mac: mac_for(label),
            transmit,
            receive,
            transmit_dataspace,
            receive_dataspace,
            buffers: VecDeque::new(),
            notification: None,
            broken: false,
        })
    }

    fn opened(&mut self, session: &Entry<Port>) {
        log!(
            "session {} for \"{}\": MAC {}",
            session.badge,
            session.label,
            session.state.mac
        );
    }

    fn close(&mut self, session: Entry<Port>) {
        let port = session.state;
        // Unmap the regions (by dropping the servers) before destroying.
        let Port {
            transmit,
            receive,
            transmit_dataspace,
            receive_dataspace,
            notification,
            buffers,
            ..
        } = port;
        drop(buffers);
        drop(transmit);
        drop(receive);
        for cap in [transmit_dataspace, receive_dataspace] {
            let _ = sys::destroy(cap);
            slots::release(cap);
        }
        if let Some(cap) = notification {
            slots::release(cap);
        }
        log!(
            "session {} closed ({} frames passed, {} refused so far)",
            session.badge,
            self.passed,
            self.refused
        );
    }

    fn handle(&mut self, session: &mut Entry<Port>, call: &mut Call<'_>) -> NicReply {
        let port = &mut session.state;
        match call.request::<NicRequest>() {
            Ok(NicRequest::Info) => NicReply::Info(NicInfo {
                mac: port.mac,
                link_up: true,
                max_frame_len: MAX_FRAME_LEN as u16,
            }),
            Ok(NicRequest::Stream(kind)) => {
                let (cap, entries) = match kind {
                    StreamKind::Transmit => (port.transmit_dataspace, port.args.transmit_entries),
                    StreamKind::Receive => (port.receive_dataspace, port.args.receive_entries),
                };
                match port.args.stream_len(kind) {
                    Ok(len) => {
                        call.reply_cap(cap);
                        NicReply::Stream {
                            region_len: len as u64,
                            entries,
                        }
                    }
                    Err(_) => NicReply::Error(SessionError::BadRequest),
                }
            }
            Ok(NicRequest::SetNotification) => match call.take_cap() {
                Ok(Some(cap)) => {
                    if let Some(old) = port.notification.replace(cap) {
                        slots::release(old);
                    }
                    NicReply::Done
                }
                Ok(None) => NicReply::Error(SessionError::BadRequest),
                Err(error) => NicReply::Error(error),
            },
            Ok(NicRequest::ServerSignal) => {
                call.reply_cap(self.kick);
                NicReply::Done
            }
            Err(error) => NicReply::Error(error),
        }
    }

    fn error(error: SessionError) -> NicReply {
        NicReply::Error(error)
    }

    fn signal(&mut self, bits: u64, sessions: &mut SessionTable<Port>) {
        if bits & KICK_BIT != 0 {
            self.pump(sessions);
        }
    }
}

impl Wire {
    /// Takes every submitted frame and receive buffer, and passes frames on.
    fn pump(&mut self, sessions: &mut SessionTable<Port>) {
        let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
        for entry in sessions.iter_mut() {
            let badge = entry.badge;
            let port = &mut entry.state;
            if port.broken {
                continue;
            }
            if let Err(error) = self.take_transmits(badge, port, &mut frames) {
                log!("session {badge}: transmit ring unusable ({error:?}); port cut off");
                port.broken = true;
                continue;
            }
            loop {
                match port.receive.next_request() {
                    Ok(Some((request, _))) => port.buffers.push_back(request),
                    Ok(None) => break,
                    Err(error) => {
                        log!("session {badge}: receive ring unusable ({error:?}); port cut off");
                        port.broken = true;
                        break;
                    }
                }
            }
        }
        let mut delivered_to: Vec<u64> = Vec::new();
        for (from, frame) in &frames {
            for entry in sessions.iter_mut() {
                if entry.badge != *from && !entry.state.broken && deliver(&mut entry.state, frame) {
                    delivered_to.push(entry.badge);
                }
            }
        }
        // Wake every client that got acknowledgements (transmits or frames).
        for entry in sessions.iter_mut() {
            let woke =
                delivered_to.contains(&entry.badge) || frames.iter().any(|f| f.0 == entry.badge);
            if woke && let Some(notification) = entry.state.notification {
                let _ = sys::signal(notification);
            }
        }
    }

    /// Moves a port's submitted frames into `frames` (after the fault
    /// schedule), acknowledging each.
    fn take_transmits(
        &mut self,
        badge: u64,
        port: &mut Port,
        frames: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<(), packet_stream::Error> {
        while let Some((request, _)) = port.transmit.next_request()? {
            let checked = match request.payload() {
                Ok(packet) if request.opcode() == nic::TRANSMIT => {
                    nic::check_transmit_frame(packet.length())
                        .map(|()| packet.length())
                        .map_err(|error| alloc::format!("{error}"))
                }
                Ok(_) => Err(alloc::format!("opcode {:?}", request.opcode())),
                Err(error) => Err(alloc::format!("{error:?}")),
            };
            let length = match checked {
                Ok(length) => length,
                Err(what) => {
                    self.refused += 1;
                    log!("session {badge}: frame refused: {what}");
                    let status = if request.payload().is_err() {
                        Status::BAD_DESCRIPTOR
                    } else {
                        nic::FRAME_REFUSED
                    };
                    let _ = port.transmit.acknowledge(request, status)?;
                    continue;
                }
            };
            let read = request
                .payload()
                .and_then(|packet| port.transmit.read(packet, 0, &mut self.frame[..length]));
            let status = if read.is_ok() {
                Status::OK
            } else {
                Status::FAILED
            };
            let _ = port.transmit.acknowledge(request, status)?;
            if read.is_err() {
                continue;
            }
            let verdict = self.faults.next(length);
            if !verdict.drop {
                let mut frame = Vec::from(&self.frame[..length]);
                if let Some(at) = verdict.corrupt_at {
                    frame[at] ^= 0x5a;
                }
                frames.push((badge, frame));
                self.passed += 1;
            }
            if let Some(len) = verdict.garbage_len {
                let garbage = (0..len).map(|_| self.faults.random() as u8).collect();
                frames.push((badge, garbage));
            }
        }
        Ok(())
    }
}

/// Writes `frame` into the port's oldest receive buffer; false when it has
/// none (the frame is lost, as on a real wire) or the buffer is bad.
fn deliver(port: &mut Port, frame: &[u8]) -> bool {
    let Some(request) = port.buffers.pop_front() else {
        return false;
    };
    let written = request.payload().and_then(|packet| {
        let prefix = ReceivedFrame::encode(frame.len(), packet.length())
            .map_err(|_| packet_stream::Error::OutOfPacket)?;
        port.receive.write(packet, 0, &prefix)?;
        port.receive.write(packet, nic::LENGTH_PREFIX_LEN, frame)
    });
    let status = match written {
        Ok(()) => Status::OK,
        Err(_) => Status::BAD_DESCRIPTOR,
    };
    if port.receive.acknowledge(request, status).is_err() {
        port.broken = true;
        return false;
    }
    written.is_ok()
}
