//! nic_probe: a Nic session client for tests. It broadcasts numbered
//! frames of a local experimental EtherType every few milliseconds, checks
//! every frame that comes back byte by byte, and exits with 0 once it has
//! received `frames` good ones from a peer (and kept sending a while longer
//! so the peer can finish too); 1 with a reason otherwise.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
use arbor_sessions::client::{self, Timer};
use arbor_sessions::nic::{MAX_FRAME_LEN, MacAddress, NicArgs, NicClient};
use arbor_sessions::{env, log};
use serde::Deserialize;

arbor::entry!(run);

/// IEEE 802 local experimental EtherType.
const ETHER_TYPE: [u8; 2] = [0x88, 0xb5];
const FRAME_LEN: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Good frames to receive from the peer.
    frames: u32,
}

fn run(_argument: u64) {
    let code = match probe() {
        Ok(()) => 0,
        Err(reason) => {
            log!("{reason}");
            1
        }
    };
    client::exit(code);
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

fn probe() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| alloc::format!("{error}"))?;
    let timer = Timer::open("").map_err(|error| alloc::format!("Timer session: {error}"))?;
    let mut nic = NicClient::open("", NicArgs::default(), timer.notification())
        .map_err(|error| alloc::format!("Nic session: {error}"))?;
    let own = nic.info.mac;
    log!(
        "MAC {own}, link {}",
        if nic.info.link_up { "up" } else { "down" }
    );
    let mut buffer = [0u8; MAX_FRAME_LEN];
    let (mut good, mut other, mut sequence) = (0u32, 0u32, 0u32);
    let mut peer = None;
    let mut linger = 0;
    while linger < 40 {
        if sequence < 10_000 {
            match nic.transmit(&frame(own, sequence)) {
                Ok(true) => sequence += 1,
                Ok(false) => {}
                Err(error) => return Err(alloc::format!("transmit: {error}")),
            }
            nic.kick();
        }
        while let Some(length) = nic
            .receive(&mut buffer)
            .map_err(|error| alloc::format!("receive: {error}"))?
        {
            match check(&buffer[..length], own) {
                Some(source) => {
                    good += 1;
                    peer = Some(source);
                }
                None => other += 1,
            }
        }
        if good >= config.frames {
            if linger == 0 {
                let peer = peer.map(|mac| alloc::format!("{mac}")).unwrap_or_default();
                log!("received {good} good frames from {peer} ({other} others ignored)");
            }
            linger += 1;
        }
        if sequence >= 10_000 && good < config.frames {
            return Err(alloc::format!(
                "sent {sequence} frames, got only {good} good ones back"
            ));
        }
        timer
            .sleep(5)
            .map_err(|error| alloc::format!("sleep: {error}"))?;
    }
    Ok(())
}
