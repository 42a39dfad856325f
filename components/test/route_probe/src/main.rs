//! route_probe: asks its parent for the sessions its config lists, in
//! order, and logs for each whether it was granted or denied. Through a
//! granted session it echoes its label; a session refused for too little
//! quota is asked for again with the amount the server named. A request
//! with a `claim` asks for hardware instead (IoPort, Irq or IoMem
//! arguments), to prove what init and core refuse. Then it closes what it
//! opened and exits.
//!
//! Config (all optional):
//! ```ron
//! (
//!     requests: [
//!         (service: "Echo", label: "left", ram: "4K", upgrade: "4K", echo: true),
//!         (service: "IoPort", claim: IoPorts(first: 0xCF8, count: 8)),
//!         (service: "Irq", claim: Irq(line: 5)),
//!         (service: "IoMem", claim: IoMem(base: 0xB000_0000, size: "256M")),
//!     ],
//!     allocate: "64K",      // allocate this much of its own quota at the end
//!     report_quota: true,   // log its RAM limit as it started
//!     hold_ms: 2000,        // keep the sessions this long, then echo again
//! )
//! ```
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{CapSlot, ObjectKind, info, slot};
use arbor::{slots, sys};
use arbor_config::{ByteSize, Claim};
use arbor_sessions::client::{self, Session};
use arbor_sessions::services::{IoMemArgs, IoPortArgs, IrqArgs};
use arbor_sessions::{SessionError, log};
use echo_server::protocol::Echo;
use serde::Deserialize;

arbor::entry!(run);

/// How often a request for a service not announced yet is repeated.
const UNAVAILABLE_RETRIES: u32 = 100;
/// Milliseconds between two such attempts, to let the provider start.
const RETRY_DELAY_MS: u64 = 10;

/// What the config may say.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    requests: Vec<Request>,
    /// Bytes to allocate from the own heap at the end ("0": nothing).
    allocate: ByteSize,
    report_quota: bool,
    /// Milliseconds to hold the open sessions before echoing through each
    /// again and closing them (0: close at once).
    hold_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            requests: Vec::new(),
            allocate: ByteSize(0),
            report_quota: false,
            hold_ms: 0,
        }
    }
}

/// One session to ask for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    service: String,
    #[serde(default)]
    label: String,
    /// RAM donated with the first attempt.
    #[serde(default = "default_ram")]
    ram: ByteSize,
    /// RAM donated to the open session afterwards ("0": no upgrade).
    #[serde(default = "no_bytes")]
    upgrade: ByteSize,
    /// Whether the session speaks the Echo protocol.
    #[serde(default = "yes")]
    echo: bool,
    /// Hardware to claim: the request carries these arguments instead.
    #[serde(default, deserialize_with = "present")]
    claim: Option<HardwareClaim>,
}

/// Reads a field that, when written, is `claim: IoPorts(...)` (no `Some`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<HardwareClaim>, D::Error> {
    HardwareClaim::deserialize(deserializer).map(Some)
}

/// The arguments of a hardware session request.
#[derive(Debug, Deserialize)]
enum HardwareClaim {
    /// Ports `first .. first + count` (an IoPort session).
    IoPorts { first: u16, count: u16 },
    /// One IOAPIC input (an Irq session).
    Irq { line: u8 },
    /// Device memory (an IoMem session).
    IoMem { base: u64, size: ByteSize },
}

fn default_ram() -> ByteSize {
    ByteSize(4096)
}

fn no_bytes() -> ByteSize {
    ByteSize(0)
}

fn yes() -> bool {
    true
}

fn run(_argument: u64) {
    // Read before any session is opened: each donates from this quota.
    let quota = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0));
    let config: Config = match echo_server::config::read() {
        Ok(config) => config,
        Err(reason) => {
            log!("route_probe: {reason}");
            client::exit(1);
            return;
        }
    };
    if config.report_quota {
        match quota {
            Ok((limit, used)) => log!(
                "route_probe: RAM limit {} KiB at start ({} KiB used)",
                limit / 1024,
                used / 1024
            ),
            Err(error) => log!("route_probe: cannot read own quota: {error}"),
        }
    }
    let pause = Pause::new();
    let mut open = Vec::new();
    let mut claimed = Vec::new();
    for request in &config.requests {
        if let Some(claim) = &request.claim {
            claimed.extend(ask_hardware(request, claim));
        } else if let Some(session) = ask(&pause, request) {
            open.push((request.label.as_str(), session));
        }
    }
    if config.hold_ms > 0 {
        pause.wait(config.hold_ms);
        for (label, session) in &open {
            match session.echo(label) {
                Ok(_) => log!(
                    "route_probe: \"{label}\" still echoes after {} ms",
                    config.hold_ms
                ),
                Err(error) => log!("route_probe: \"{label}\" no longer echoes: {error}"),
            }
        }
    }
    let count = open.len() + claimed.len();
    let failed = open
        .into_iter()
        .filter_map(|(_, s)| s.close().err())
        .count()
        + claimed
            .into_iter()
            .filter_map(|s| client::close_session(s).err())
            .count();
    log!("route_probe: closed {count} sessions ({failed} failed)");
    if config.allocate.0 > 0 {
        allocate(config.allocate.0);
    }
    log!("route_probe: done");
    client::exit(0);
}

/// Asks for one session and logs the outcome; the open session if granted.
fn ask(pause: &Pause, request: &Request) -> Option<Echo> {
    let (service, label) = (request.service.as_str(), request.label.as_str());
    let mut ram = request.ram.0;
    let mut result = open_when_announced(pause, service, label, ram);
    if let Err(SessionError::InsufficientQuota { needed }) = result {
        // The parent moves whole pages; ask for the named amount rounded up.
        ram += needed.next_multiple_of(4096);
        log!(
            "route_probe: {service} \"{label}\" refused: {needed} more bytes needed, asking again with {ram}"
        );
        result = open_when_announced(pause, service, label, ram);
    }
    let session = match result {
        Ok(session) => session,
        Err(SessionError::Denied) => {
            log!("route_probe: {service} \"{label}\" denied");
            return None;
        }
        Err(error) => {
            log!("route_probe: {service} \"{label}\" failed: {error}");
            return None;
        }
    };
    if !request.echo {
        log!("route_probe: {service} \"{label}\" granted ({ram} bytes)");
        return Some(session);
    }
    match session.echo(label) {
        Ok(text) => {
            log!("route_probe: {service} \"{label}\" granted ({ram} bytes), echoed \"{text}\"")
        }
        Err(error) => log!("route_probe: {service} \"{label}\" granted, but echo failed: {error}"),
    }
    let more = request.upgrade.0;
    if more > 0 {
        match session.upgrade(more) {
            Ok(()) => log!("route_probe: {service} \"{label}\" upgraded by {more} bytes"),
            Err(error) => log!("route_probe: {service} \"{label}\" upgrade failed: {error}"),
        }
    }
    Some(session)
}

/// Asks for one hardware session and logs the outcome with the claim.
fn ask_hardware(request: &Request, claim: &HardwareClaim) -> Option<Session> {
    let (service, label, ram) = (
        request.service.as_str(),
        request.label.as_str(),
        request.ram.0,
    );
    let (shown, result) = match *claim {
        HardwareClaim::IoPorts { first, count } => (
            Claim::IoPorts { first, count },
            client::open_session(service, label, &IoPortArgs { first, count }, ram, None),
        ),
        HardwareClaim::Irq { line } => {
            // The interrupt's notification travels with the request.
            let notification = slots::allocate()
                .ok()
                .filter(|&cap| sys::create(ObjectKind::Notification, slot::OWN_PD, cap, 0).is_ok());
            let result = match notification {
                Some(cap) => {
                    client::open_session(service, label, &IrqArgs { line }, ram, Some(cap))
                }
                None => Err(SessionError::ClientQuotaExceeded),
            };
            (Claim::Irq { line }, result)
        }
        HardwareClaim::IoMem { base, size } => (
            Claim::IoMem { base, size: size.0 },
            client::open_session(
                service,
                label,
                &IoMemArgs {
                    phys: base,
                    size: size.0,
                },
                ram,
                None,
            ),
        ),
    };
    match result {
        Ok(session) => {
            log!("route_probe: {service} session for {shown} granted");
            Some(session)
        }
        Err(SessionError::Denied) => {
            log!("route_probe: {service} session for {shown} denied");
            None
        }
        Err(error) => {
            log!("route_probe: {service} session for {shown} failed: {error}");
            None
        }
    }
}

/// Opens a session, repeating while the provider has not announced yet
/// (init starts siblings together and refuses requests for a service not
/// announced so far).
fn open_when_announced(
    pause: &Pause,
    service: &str,
    label: &str,
    ram: u64,
) -> Result<Echo, SessionError> {
    let mut attempt = 0;
    loop {
        match Echo::open(service, label, ram) {
            Err(SessionError::Unavailable) if attempt < UNAVAILABLE_RETRIES => {
                attempt += 1;
                pause.wait(RETRY_DELAY_MS);
            }
            other => return other,
        }
    }
}

/// Allocates `bytes` from the own heap, uses them and says whether it worked.
fn allocate(bytes: u64) {
    let mut block: Vec<u8> = Vec::new();
    match block.try_reserve_exact(bytes as usize) {
        Ok(()) => {
            block.resize(bytes as usize, 0xA5);
            log!(
                "route_probe: allocated {} KiB of its own quota",
                bytes / 1024
            );
        }
        Err(_) => log!(
            "route_probe: could not allocate {} KiB of its own quota",
            bytes / 1024
        ),
    }
}

/// Waiting a while: a timed wait on a notification nobody signals, or
/// yielding when no notification could be made.
struct Pause {
    notification: Option<CapSlot>,
}

impl Pause {
    fn new() -> Self {
        let notification = slots::allocate()
            .ok()
            .filter(|&cap| sys::create(ObjectKind::Notification, slot::OWN_PD, cap, 0).is_ok());
        Pause { notification }
    }

    fn wait(&self, ms: u64) {
        match self.notification {
            Some(notification) if sys::wait_timeout(notification, ms).is_ok() => {}
            _ => sys::yield_now(),
        }
    }
}
