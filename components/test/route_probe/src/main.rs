//! route_probe: asks its parent for the sessions its config lists, in
//! order, and logs for each whether it was granted or denied. Through a
//! granted session it echoes its label; a session refused for too little
//! quota is asked for again with the amount the server named. Then it
//! closes what it opened and exits.
//!
//! Config (all optional):
//! ```ron
//! (
//!     requests: [(service: "Echo", label: "left", ram: "4K", upgrade: "4K", echo: true)],
//!     allocate: "64K",      // allocate this much of its own quota at the end
//!     report_quota: true,   // log its RAM limit as it started
//! )
//! ```
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{info, slot};
use arbor::sys;
use arbor_config::ByteSize;
use arbor_sessions::SessionError;
use arbor_sessions::client::{self, Log};
use echo_server::protocol::Echo;
use serde::Deserialize;

arbor::entry!(run);

/// How often a request for a service not announced yet is repeated.
const UNAVAILABLE_RETRIES: u32 = 50;
/// Yields between two such attempts, to let the provider start.
const YIELDS_BETWEEN_RETRIES: u32 = 200;

/// What the config may say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    requests: Vec<Request>,
    allocate: Option<ByteSize>,
    report_quota: bool,
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
    /// RAM donated to the open session afterwards, if any.
    #[serde(default)]
    upgrade: Option<ByteSize>,
    /// Whether the session speaks the Echo protocol.
    #[serde(default = "yes")]
    echo: bool,
}

fn default_ram() -> ByteSize {
    ByteSize(4096)
}

fn yes() -> bool {
    true
}

fn run(_argument: u64) {
    // Read before any session is opened: each donates from this quota.
    let quota = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0));
    let Ok(log) = Log::open("") else { return };
    let say = |text: &str| {
        let _ = log.write(text);
    };
    let config: Config = match echo_server::config::read() {
        Ok(config) => config,
        Err(reason) => {
            say(&format!("route_probe: {reason}"));
            client::exit(1);
            return;
        }
    };
    if config.report_quota {
        match quota {
            Ok((limit, used)) => say(&format!(
                "route_probe: RAM limit {} KiB at start ({} KiB used)",
                limit / 1024,
                used / 1024
            )),
            Err(error) => say(&format!("route_probe: cannot read own quota: {error}")),
        }
    }
    let mut open = Vec::new();
    for request in &config.requests {
        if let Some(session) = ask(&say, request) {
            open.push(session);
        }
    }
    let count = open.len();
    let failed = open.into_iter().filter_map(|s| s.close().err()).count();
    say(&format!(
        "route_probe: closed {count} sessions ({failed} failed)"
    ));
    if let Some(amount) = config.allocate {
        say(&allocate(amount.0));
    }
    say("route_probe: done");
    client::exit(0);
}

/// Asks for one session and logs the outcome; the open session if granted.
fn ask(say: &dyn Fn(&str), request: &Request) -> Option<Echo> {
    let (service, label) = (request.service.as_str(), request.label.as_str());
    let mut ram = request.ram.0;
    let mut result = open_when_announced(service, label, ram);
    if let Err(SessionError::InsufficientQuota { needed }) = result {
        // The parent moves whole pages; ask for the named amount rounded up.
        ram += needed.next_multiple_of(4096);
        say(&format!(
            "route_probe: {service} \"{label}\" refused: {needed} more bytes needed, asking again with {ram}"
        ));
        result = open_when_announced(service, label, ram);
    }
    let session = match result {
        Ok(session) => session,
        Err(SessionError::Denied) => {
            say(&format!("route_probe: {service} \"{label}\" denied"));
            return None;
        }
        Err(error) => {
            say(&format!(
                "route_probe: {service} \"{label}\" failed: {error}"
            ));
            return None;
        }
    };
    if !request.echo {
        say(&format!(
            "route_probe: {service} \"{label}\" granted ({ram} bytes)"
        ));
        return Some(session);
    }
    match session.echo(label) {
        Ok(text) => say(&format!(
            "route_probe: {service} \"{label}\" granted ({ram} bytes), echoed \"{text}\""
        )),
        Err(error) => say(&format!(
            "route_probe: {service} \"{label}\" granted, but echo failed: {error}"
        )),
    }
    if let Some(more) = request.upgrade {
        match session.upgrade(more.0) {
            Ok(()) => say(&format!(
                "route_probe: {service} \"{label}\" upgraded by {} bytes",
                more.0
            )),
            Err(error) => say(&format!(
                "route_probe: {service} \"{label}\" upgrade failed: {error}"
            )),
        }
    }
    Some(session)
}

/// Opens a session, repeating while the provider has not announced yet.
fn open_when_announced(service: &str, label: &str, ram: u64) -> Result<Echo, SessionError> {
    let mut attempt = 0;
    loop {
        match Echo::open(service, label, ram) {
            Err(SessionError::Unavailable) if attempt < UNAVAILABLE_RETRIES => {
                attempt += 1;
                for _ in 0..YIELDS_BETWEEN_RETRIES {
                    sys::yield_now();
                }
            }
            other => return other,
        }
    }
}

/// Allocates `bytes` from the own heap and says whether it worked.
fn allocate(bytes: u64) -> String {
    let mut block: Vec<u8> = Vec::new();
    match block.try_reserve_exact(bytes as usize) {
        Ok(()) => {
            block.resize(bytes as usize, 0xA5);
            format!(
                "route_probe: allocated {} KiB of its own quota",
                bytes / 1024
            )
        }
        Err(_) => format!(
            "route_probe: could not allocate {} KiB of its own quota",
            bytes / 1024
        ),
    }
}
