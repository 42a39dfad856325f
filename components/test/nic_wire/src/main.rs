//! nic_wire: a test NIC driver that is a wire (a hub, really) between
//! network stacks. It opens one Uplink session per label in its config
//! (routes send each to a stack) and passes every frame one stack sends to
//! every other; with its config it drops, corrupts or follows frames with
//! garbage ([`nic_wire::Faults`]), or faults after a number of frames (a
//! NIC driver's death, which the stacks survive).
//!
//! Like a real driver it is the Uplink *client*: the stacks make the
//! streams, so its death closes sessions at the stacks and frees nothing
//! they have mapped. It never trusts a stack: every length a stack writes
//! is checked by the session client before a byte is read, and a stack
//! that breaks its session is cut off, nobody else.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{ObjectKind, Rights, slot};
use arbor::{slots, sys};
use arbor_sessions::uplink::{MAX_FRAME_LEN, MacAddress, UplinkArgs, UplinkClient};
use arbor_sessions::{client, env, log};
use nic_wire::{Config, Faults};

arbor::entry!(run);

fn run(_argument: u64) {
    if let Err(error) = wire() {
        log!("{error}");
    }
    client::exit(1);
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

/// One stack's session; `None` once the stack broke it.
struct Port {
    label: String,
    uplink: Option<UplinkClient>,
}

fn wire() -> Result<(), String> {
    let config: Config = env::config().map_err(|e| alloc::format!("config: {e}"))?;
    let notification = slots::allocate().map_err(|e| alloc::format!("{e:?}"))?;
    sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)
        .map_err(|e| alloc::format!("notification: {e:?}"))?;
    let signal = slots::allocate().map_err(|e| alloc::format!("{e:?}"))?;
    sys::derive(notification, signal, Rights::WRITE.union(Rights::GRANT), 1)
        .map_err(|e| alloc::format!("signal: {e:?}"))?;
    log!(
        "wire up (drop every {:?}, corrupt every {:?}, garbage every {:?}, fault after {:?} frames)",
        config.drop_every,
        config.corrupt_every,
        config.garbage_every,
        config.crash_after_frames
    );
    let mut ports = Vec::new();
    for label in &config.uplinks {
        let mac = mac_for(label);
        let uplink = UplinkClient::open_when_free(label, UplinkArgs::new(mac), signal)
            .map_err(|e| alloc::format!("Uplink session \"{label}\": {e}"))?;
        log!("Uplink session \"{label}\" open: MAC {mac}");
        ports.push(Port {
            label: label.clone(),
            uplink: Some(uplink),
        });
    }
    let crash_after = config.crash_after_frames;
    let mut faults = Faults::new(config);
    let mut buffer = alloc::vec![0u8; MAX_FRAME_LEN];
    let mut passed: u64 = 0;
    loop {
        let mut frames: Vec<(usize, Vec<u8>)> = Vec::new();
        for (index, port) in ports.iter_mut().enumerate() {
            let Some(uplink) = port.uplink.as_mut() else {
                continue;
            };
            loop {
                match uplink.next_to_send(&mut buffer) {
                    Ok(Some(length)) => {
                        let verdict = faults.next(length);
                        if !verdict.drop {
                            let mut frame = Vec::from(&buffer[..length]);
                            if let Some(at) = verdict.corrupt_at {
                                frame[at] ^= 0x5a;
                            }
                            frames.push((index, frame));
                        }
                        if let Some(len) = verdict.garbage_len {
                            let garbage = (0..len).map(|_| faults.random() as u8).collect();
                            frames.push((index, garbage));
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        log!("\"{}\": {error}; cut off", port.label);
                        port.uplink = None;
                        break;
                    }
                }
            }
        }
        for (from, frame) in &frames {
            for (index, port) in ports.iter_mut().enumerate() {
                if index == *from {
                    continue;
                }
                if let Some(uplink) = port.uplink.as_mut()
                    && let Err(error) = uplink.deliver(frame)
                {
                    log!("\"{}\": {error}; cut off", port.label);
                    port.uplink = None;
                }
            }
            passed += 1;
            if crash_after.is_some_and(|after| passed >= after) {
                log!("fault injected after {passed} frames");
                // SAFETY: none; this is the deliberate fault the restart
                // test is about (address 8, the dangling pointer, is never
                // mapped).
                unsafe { core::ptr::write_volatile(core::ptr::dangling_mut::<u64>(), 0) };
            }
        }
        for port in &ports {
            if let Some(uplink) = &port.uplink {
                uplink.kick();
            }
        }
        sys::wait(notification).map_err(|e| alloc::format!("wait: {e:?}"))?;
    }
}
