//! init: reads its config, starts its children, and answers their session
//! requests by their routes — the same `route_session` that `cargo arbor
//! check` uses. Quota travels with every session: init moves the donated
//! RAM from the client's Pd to the provider's (or its own, when it forwards
//! the request to its parent) and back when the session closes.
//!
//! A child's faults come to init as messages; init logs them and applies
//! the child's restart policy. A child whose binary is `init` and whose
//! config is an init config is a nested init: it runs this same code
//! against init as its parent, so the tree can be as deep as memory allows.
//!
//! init never trusts a child: requests are decoded defensively and every
//! donated amount is moved by the kernel, which refuses what a child lacks.
//!
//! This file reads the config and runs the receive loop; the rest is in
//! `children` (start, faults, restart, tear-down), `sessions` (routing a
//! child's requests, quota, config ROMs), `export` (a nested init serving
//! its children's services upward), `hardware` (what a child may claim) and `policy` (restart decisions, host-tested).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod children;
mod export;
mod hardware;
mod policy;
mod sessions;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use arbor::abi::{self, CapSlot, FAULT_LABEL, FaultKind, ObjectKind, Rights, info, slot};
use arbor::{loader, slots, sys};
use arbor_config::label::Printable;
use arbor_config::{InitConfig, RouteDecision, route_session};
use arbor_sessions::client::{self, Endpoint, Incoming, Log, Rom, Session};
use arbor_sessions::parent::{ParentReply, ParentRequest, ROOT_BADGE, RootReply, RootRequest};
use arbor_sessions::services::{RomReply, RomRequest, name};
use arbor_sessions::{Interface, SessionError, decode};
use policy::AfterFault;

arbor::entry!(run);

/// Badge bit of fault reports; the rest is the child's index.
const FAULT_FLAG: u64 = 1 << 40;
/// Badge bit of config-ROM sessions init serves itself; the rest is the session id.
const LOCAL_FLAG: u64 = 1 << 41;
/// Badge bit of the root capabilities a nested init announces to its parent;
/// the rest is the index into `Init::exports`.
const EXPORT_FLAG: u64 = 1 << 42;
/// Priority of every child.
const CHILD_PRIORITY: u8 = 8;

/// Where a child's session was opened.
enum Via {
    /// Forwarded to init's parent.
    Parent(Session),
    /// Created by a sibling through the root it announced for the service;
    /// `badge` is the session's badge there.
    Child {
        provider: usize,
        badge: u64,
        root: CapSlot,
    },
    /// The child's config ROM, served by init: a dataspace holding the text.
    Config { dataspace: CapSlot, size: u64 },
}

struct SessionRecord {
    id: u32,
    client: usize,
    via: Via,
    /// The capability init received (or made) and passed on.
    cap: CapSlot,
    ram: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Running,
    Exited(i32),
    Held,
}

struct ChildState {
    config: arbor_config::Child,
    running: Option<loader::Child>,
    /// Capabilities init made for this child (parent and fault endpoint copies).
    own_caps: Vec<CapSlot>,
    /// Services it announced, with the root capability.
    roots: Vec<(String, CapSlot)>,
    restarts: u32,
    status: Status,
    /// init's free (RAM, caps) right after the child's first fault was cleaned
    /// up: what every later clean-up must return to, or something leaked.
    free_after_first_fault: Option<(u64, u64)>,
}

struct Init {
    config: InitConfig,
    log: Log,
    endpoint: CapSlot,
    children: Vec<ChildState>,
    sessions: Vec<SessionRecord>,
    binaries: Vec<(String, Rom)>,
    next_id: u32,
    /// A notification to wait on for backoffs.
    sleeper: Option<CapSlot>,
    /// Whether this init is nested (its parent is another init, which may
    /// route its children's requests to services this init's children provide).
    nested: bool,
    /// Services announced to the parent: name and the child providing it.
    exports: Vec<(String, usize)>,
    /// Sessions the parent opened through an export.
    export_sessions: Vec<export::ExportSession>,
}

fn run(_argument: u64) {
    let log = match Log::open("") {
        Ok(log) => log,
        Err(_) => {
            // Without a log there is nobody to tell; a fault reaches our parent.
            panic!("init: no Log session");
        }
    };
    if let Err(reason) = start(log) {
        // `start` has logged through the Log session where it could.
        let _ = reason;
        client::exit(1);
    }
}

fn start(log: Log) -> Result<(), String> {
    let (config, nested) = match read_config() {
        Ok(found) => found,
        Err(reason) => {
            let _ = log.write(&reason);
            return Err(reason);
        }
    };
    let endpoint = new_slot()?;
    sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0)
        .map_err(|e| format!("endpoint: {e}"))?;
    let mut init = Init {
        config,
        log,
        endpoint,
        children: Vec::new(),
        sessions: Vec::new(),
        binaries: Vec::new(),
        next_id: 1,
        sleeper: None,
        nested,
        exports: Vec::new(),
        export_sessions: Vec::new(),
    };
    let (ram, _) = own_quota();
    init.say(&format!(
        "{} children, {} KiB RAM available",
        init.config.children.len(),
        ram / 1024
    ));
    for index in 0..init.config.children.len() {
        let child = init.config.children[index].clone();
        init.children.push(ChildState {
            config: child,
            running: None,
            own_caps: Vec::new(),
            roots: Vec::new(),
            restarts: 0,
            status: Status::Held,
            free_after_first_fault: None,
        });
        init.start_child(index);
    }
    let tsc = arbor_tsc();
    init.say(&format!("all children started (tsc {tsc})"));
    init.serve();
    Ok(())
}

fn arbor_tsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The config: a whole scenario (the root init gets the scenario file) or
/// an init section (a nested init gets its parent's `config:` text), and
/// whether this init is nested.
fn read_config() -> Result<(InitConfig, bool), String> {
    let rom = Rom::open("config").map_err(|e| format!("cannot read config ROM: {e}"))?;
    let text =
        core::str::from_utf8(rom.bytes).map_err(|_| "config ROM is not UTF-8".to_string())?;
    if text.trim_start().starts_with("Scenario") || text.contains("Scenario(") {
        let scenario = arbor_config::parse_scenario(text).map_err(|e| format!("config: {e}"))?;
        return scenario
            .init
            .map(|init| (init, false))
            .ok_or_else(|| "config: the scenario has no init section".to_string());
    }
    arbor_config::ComponentConfig::new(text)
        .as_init_config()
        .map(|init| (init, true))
        .map_err(|e| format!("config: {e}"))
}

fn own_quota() -> (u64, u64) {
    let ram =
        sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0)).map_or(0, |(limit, used)| limit - used);
    let caps =
        sys::info(info::PD_CAPS, u64::from(slot::OWN_PD.0)).map_or(0, |(limit, used)| limit - used);
    (ram, caps)
}

fn new_slot() -> Result<CapSlot, String> {
    slots::allocate().map_err(|e| format!("out of capability slots ({e})"))
}

fn kernel(error: abi::Error) -> SessionError {
    client::kernel_error(error)
}

impl Init {
    fn say(&self, text: &str) {
        let _ = self.log.write(text);
    }

    fn serve(&mut self) {
        let mut server = Endpoint::new(self.endpoint);
        let mut receive = match new_slot() {
            Ok(slot) => slot,
            Err(_) => return,
        };
        loop {
            let incoming = match server.next(Some(receive)) {
                Ok(incoming) => incoming,
                Err(error) => {
                    self.say(&format!("receive failed: {error}"));
                    return;
                }
            };
            let arrived = incoming.cap_received.then_some(receive);
            if arrived.is_some() {
                match new_slot() {
                    Ok(slot) => receive = slot,
                    Err(_) => return,
                }
            }
            let badge = incoming.badge.0;
            let mut kept = false;
            if badge & FAULT_FLAG != 0 && incoming.label == FAULT_LABEL {
                self.child_faulted((badge & !FAULT_FLAG) as usize, &incoming);
            } else if badge & EXPORT_FLAG != 0 {
                self.export_request(badge & !EXPORT_FLAG, &incoming, &mut server);
            } else if badge & LOCAL_FLAG != 0 {
                self.local_request(badge & !LOCAL_FLAG, &incoming, &mut server);
            } else if (1..=self.children.len() as u64).contains(&badge) {
                kept = self.parent_request(badge as usize - 1, &incoming, arrived, &mut server);
            } else {
                server.set_reply(&ParentReply::Error(SessionError::BadRequest), None);
            }
            if let (Some(cap), false) = (arrived, kept) {
                slots::release(cap);
            }
            if self.children.iter().all(|c| c.status != Status::Running)
                && !self.children.is_empty()
            {
                self.say("no child is running any more");
                client::exit(0);
            }
        }
    }

    /// Handles a child's parent request; true if it kept the capability that arrived.
    fn parent_request(
        &mut self,
        index: usize,
        incoming: &Incoming,
        arrived: Option<CapSlot>,
        server: &mut Endpoint,
    ) -> bool {
        let request = match (
            incoming.interface,
            decode::<ParentRequest<'_>>(incoming.bytes()),
        ) {
            (Some(Interface::Parent), Ok(request)) => request,
            _ => {
                server.set_reply(&ParentReply::Error(SessionError::BadRequest), None);
                return false;
            }
        };
        let name = self.children[index].config.name.clone();
        match request {
            ParentRequest::Session {
                service,
                label,
                args,
                ram,
            } => {
                let result = self.open_session(index, service, label, args, ram, arrived);
                match result {
                    Ok((id, cap)) => {
                        server.set_reply(&ParentReply::Session { session: id }, Some(cap))
                    }
                    Err(error) => {
                        // A provider that has not announced yet, or too little
                        // quota, is routine: the client asks again.
                        if !matches!(
                            error,
                            SessionError::Unavailable | SessionError::InsufficientQuota { .. }
                        ) {
                            self.say(&format!(
                                "{name}'s request for {} (label \"{}\") refused: {error}",
                                Printable(service),
                                Printable(label)
                            ));
                        }
                        server.set_reply(&ParentReply::Error(error), None);
                    }
                }
                false
            }
            ParentRequest::Upgrade { session, ram } => {
                let reply = match self.upgrade(index, session, ram) {
                    Ok(()) => ParentReply::Done,
                    Err(error) => ParentReply::Error(error),
                };
                server.set_reply(&reply, None);
                false
            }
            ParentRequest::Close { session } => {
                let reply = match self.close(index, session) {
                    Ok(()) => ParentReply::Done,
                    Err(error) => ParentReply::Error(error),
                };
                server.set_reply(&reply, None);
                false
            }
            ParentRequest::Announce { service } => match arrived {
                Some(root)
                    if self.children[index]
                        .config
                        .provides
                        .iter()
                        .any(|p| p == service) =>
                {
                    self.say(&format!("{name} announced {service}"));
                    self.children[index].roots.push((service.to_string(), root));
                    self.export(service, index);
                    server.set_reply(&ParentReply::Done, None);
                    true
                }
                _ => {
                    self.say(&format!(
                        "{name} announced {service}, which its config does not let it provide"
                    ));
                    server.set_reply(&ParentReply::Error(SessionError::Denied), None);
                    false
                }
            },
            ParentRequest::Exit { code } => {
                self.say(&format!("{name} exited with code {code}"));
                self.tear_down(index);
                self.children[index].status = Status::Exited(code);
                server.set_reply(&ParentReply::Done, None);
                false
            }
        }
    }
}
