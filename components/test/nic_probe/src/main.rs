//! nic_probe: a stand-in network stack for tests. It serves one Uplink
//! session (a driver such as nic_wire opens it), broadcasts numbered frames
//! of a local experimental EtherType every few milliseconds from the MAC
//! the driver named, checks every frame that comes up byte by byte, and
//! exits with 0 once it has received `frames` good ones from a peer (and
//! kept sending a while longer so the peer can finish too); 1 with a reason
//! otherwise.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use arbor::abi::CapSlot;
use arbor_sessions::client::{self, Session, TIMER_SESSION_RAM, call, open_session};
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::services::{TimerReply, TimerRequest, name};
use arbor_sessions::table::{Entry, Quota, SessionTable};
use arbor_sessions::uplink::{self, MAX_FRAME_LEN, MacAddress, UplinkPort, UplinkReply};
use arbor_sessions::{Interface, SessionError, env, log};
use serde::Deserialize;

arbor::entry!(run);

/// IEEE 802 local experimental EtherType.
const ETHER_TYPE: [u8; 2] = [0x88, 0xb5];
const FRAME_LEN: usize = 64;
/// Server notification bits: the driver's kick and the send timer.
const KICK_BIT: u64 = 1;
const TICK_BIT: u64 = 2;
const TICK_MS: u64 = 5;
/// Frames sent at most before giving up.
const MAX_SENT: u32 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Good frames to receive from the peer.
    frames: u32,
}

fn run(_argument: u64) {
    if let Err(reason) = start() {
        log!("{reason}");
    }
    client::exit(1);
}

fn frame(mac: MacAddress, sequence: u32) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    frame[..6].fill(0xff);
    frame[6..12].copy_from_slice(&mac.0);
    frame[12..14].copy_from_slice(&ETHER_TYPE);
    frame[14..18].copy_from_slice(&sequence.to_le_bytes());
    for (index, byte) in frame[18..].iter_mut().enumerate() {
        *byte = (sequence as usize).wrapping_add(index) as u8;
    }
    frame
}

/// Whether `bytes` is a probe frame, unaltered, from someone else.
fn check(bytes: &[u8], own: MacAddress) -> Option<MacAddress> {
    if bytes.len() != FRAME_LEN || bytes[12..14] != ETHER_TYPE {
        return None;
    }
    let mut source = MacAddress::default();
    source.0.copy_from_slice(&bytes[6..12]);
    let sequence = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
    (source != own && bytes == frame(source, sequence)).then_some(source)
}

fn start() -> Result<(), alloc::string::String> {
    let config: Config = env::config().map_err(|error| alloc::format!("{error}"))?;
    let server = Server::new().map_err(|e| alloc::format!("server: {e}"))?;
    let kick = server
        .signal_cap(KICK_BIT)
        .map_err(|e| alloc::format!("signal: {e}"))?;
    let tick = server
        .signal_cap(TICK_BIT)
        .map_err(|e| alloc::format!("signal: {e}"))?;
    let timer = open_session(name::TIMER, "", &(), TIMER_SESSION_RAM, None)
        .map_err(|e| alloc::format!("Timer session: {e}"))?;
    timer_request(&timer, TimerRequest::SetNotification, Some(tick))?;
    timer_request(&timer, TimerRequest::Periodic { ms: TICK_MS }, None)?;
    let probe = Probe {
        wanted: config.frames,
        kick,
        port: None,
        good: 0,
        other: 0,
        sequence: 0,
        peer: None,
        linger: 0,
        buffer: alloc::vec![0; MAX_FRAME_LEN],
    };
    let error = server.serve(&[uplink::SERVICE], probe);
    Err(alloc::format!("serving: {error}"))
}

fn timer_request(
    timer: &Session,
    request: TimerRequest,
    cap: Option<CapSlot>,
) -> Result<(), alloc::string::String> {
    match call::<_, TimerReply>(timer.cap, Interface::Session, &request, cap, None) {
        Ok((TimerReply::Error(error), _)) | Err(error) => Err(alloc::format!("Timer: {error}")),
        Ok(_) => Ok(()),
    }
}

struct Probe {
    wanted: u32,
    kick: CapSlot,
    port: Option<UplinkPort>,
    good: u32,
    other: u32,
    sequence: u32,
    peer: Option<MacAddress>,
    /// Ticks sent after the goal was reached.
    linger: u32,
    buffer: alloc::vec::Vec<u8>,
}

impl Service for Probe {
    type Session = ();
    type Reply = UplinkReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<(), SessionError> {
        if self.port.is_some() {
            return Err(SessionError::AlreadyClaimed);
        }
        let port = UplinkPort::create(args, quota)?;
        log!("MAC {} from the driver, link up", port.args.mac);
        self.port = Some(port);
        Ok(())
    }

    fn close(&mut self, _session: Entry<()>) {
        if let Some(port) = self.port.take() {
            port.release();
        }
    }

    fn handle(&mut self, _session: &mut Entry<()>, call: &mut Call<'_>) -> UplinkReply {
        match self.port.as_mut() {
            Some(port) => port.handle(call, self.kick),
            None => UplinkReply::Error(SessionError::BadRequest),
        }
    }

    fn error(error: SessionError) -> UplinkReply {
        UplinkReply::Error(error)
    }

    fn signal(&mut self, bits: u64, _sessions: &mut SessionTable<()>) {
        if let Err(reason) = self.exchange(bits & TICK_BIT != 0) {
            log!("{reason}");
            client::exit(1);
        }
    }
}

impl Probe {
    /// Checks what came up; on a tick, sends the next frame.
    fn exchange(&mut self, tick: bool) -> Result<(), alloc::string::String> {
        if tick && self.linger > 0 {
            // Done: keep sending a while for the peer (whose own driver
            // session may close under it when the peer exits first).
            self.linger += 1;
            if self.linger >= 40 {
                client::exit(0);
            }
        }
        let Some(port) = self.port.as_mut() else {
            return Ok(());
        };
        let own = port.args.mac;
        while let Some(taken) = port
            .take_frame(&mut self.buffer)
            .map_err(|e| alloc::format!("up stream: {e:?}"))?
        {
            let length = taken.map_err(|e| alloc::format!("frame refused: {e}"))?;
            match check(&self.buffer[..length], own) {
                Some(source) => {
                    self.good += 1;
                    self.peer = Some(source);
                }
                None => self.other += 1,
            }
        }
        if tick && self.sequence < MAX_SENT {
            port.take_buffers()
                .map_err(|e| alloc::format!("down stream: {e:?}"))?;
            if port
                .send(&frame(own, self.sequence))
                .map_err(|e| alloc::format!("down stream: {e:?}"))?
            {
                self.sequence += 1;
            }
        }
        port.wake_driver();
        if tick && self.good >= self.wanted {
            if self.linger == 0 {
                let peer = self
                    .peer
                    .map(|mac| alloc::format!("{mac}"))
                    .unwrap_or_default();
                log!(
                    "received {} good frames from {peer} ({} others ignored)",
                    self.good,
                    self.other
                );
            }
            self.linger = self.linger.max(1);
        } else if self.sequence >= MAX_SENT {
            return Err(alloc::format!(
                "sent {} frames, got only {} good ones back",
                self.sequence,
                self.good
            ));
        }
        Ok(())
    }
}
