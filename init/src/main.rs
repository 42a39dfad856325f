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
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod policy;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use arbor::abi::{self, CapSlot, FAULT_LABEL, FaultKind, ObjectKind, Rights, info, slot};
use arbor::{loader, slots, sys};
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
    export_sessions: Vec<ExportSession>,
}

/// A session this (nested) init's parent opened through an exported service.
struct ExportSession {
    /// The badge the parent knows it by.
    badge: u64,
    provider: usize,
    /// The session's badge at the provider, and the root it came through.
    inner_badge: u64,
    inner_root: CapSlot,
    ram: u64,
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
/// an init config (a nested init gets its parent's `config:` text).
/// The config, and whether this init is nested (it then got an init section,
/// not a whole scenario).
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

fn release(cap: CapSlot) {
    let _ = sys::delete(cap);
    slots::free(cap);
}

fn kernel(error: abi::Error) -> SessionError {
    client::kernel_error(error)
}

impl Init {
    /// Waits `ms` milliseconds (a timed wait on a notification nobody signals).
    /// init serves no request meanwhile; backoffs are meant to be short.
    fn sleep(&mut self, ms: u64) {
        if ms == 0 {
            return;
        }
        if self.sleeper.is_none()
            && let Ok(notification) = slots::allocate()
        {
            if sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0).is_ok() {
                self.sleeper = Some(notification);
            } else {
                slots::free(notification);
            }
        }
        if let Some(notification) = self.sleeper {
            let _ = sys::wait_timeout(notification, ms);
        }
    }

    fn say(&self, text: &str) {
        let _ = self.log.write(text);
    }

    fn binary(&mut self, name: &str) -> Result<&'static [u8], SessionError> {
        if let Some((_, rom)) = self.binaries.iter().find(|(n, _)| n == name) {
            return Ok(rom.bytes);
        }
        let rom = Rom::open(name)?;
        let bytes = rom.bytes;
        self.binaries.push((name.to_string(), rom));
        Ok(bytes)
    }

    fn start_child(&mut self, index: usize) {
        let child = self.children[index].config.clone();
        let quota = child.effective_quota(&self.config);
        let (ram, caps) = (quota.ram.0 / 4096 * 4096, quota.caps.0);
        let image = match self.binary(child.binary_name()) {
            Ok(image) => image,
            Err(error) => {
                self.say(&format!(
                    "cannot start {}: binary \"{}\": {error}",
                    child.name,
                    child.binary_name()
                ));
                self.children[index].status = Status::Held;
                return;
            }
        };
        let badge = index as u64 + 1;
        let caps_made = (|| -> Result<(CapSlot, CapSlot), String> {
            let parent = new_slot()?;
            sys::derive(
                self.endpoint,
                parent,
                Rights::WRITE.union(Rights::GRANT),
                badge,
            )
            .map_err(|e| format!("{e}"))?;
            let fault = new_slot()?;
            sys::derive(
                self.endpoint,
                fault,
                Rights::WRITE,
                FAULT_FLAG | index as u64,
            )
            .map_err(|e| format!("{e}"))?;
            Ok((parent, fault))
        })();
        let (parent, fault) = match caps_made {
            Ok(pair) => pair,
            Err(error) => {
                self.say(&format!("cannot start {}: {error}", child.name));
                return;
            }
        };
        let spec = loader::ChildSpec {
            image,
            ram,
            caps,
            priority: CHILD_PRIORITY,
            argument: 0,
            fault_endpoint: Some(fault),
            grants: &[(parent, slot::PARENT, Rights::WRITE)],
        };
        match loader::spawn(&spec) {
            Ok(running) => {
                let state = &mut self.children[index];
                state.running = Some(running);
                state.own_caps = alloc::vec![parent, fault];
                state.status = Status::Running;
                self.say(&format!(
                    "started {} ({}), RAM {} KiB, caps {}",
                    child.name,
                    child.binary_name(),
                    ram / 1024,
                    caps
                ));
            }
            Err(error) => {
                release(parent);
                release(fault);
                self.say(&format!("cannot start {}: {error}", child.name));
            }
        }
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
                release(cap);
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
                                "{name}'s request for {service} (label \"{label}\") refused: {error}"
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

    /// A nested init offers a service its child announced to its own parent
    /// (which accepts it only if its config says this init provides it).
    fn export(&mut self, service: &str, provider: usize) {
        if !self.nested {
            return;
        }
        if let Some(known) = self.exports.iter_mut().find(|(s, _)| s == service) {
            known.1 = provider; // a restarted provider serves it again
            return;
        }
        let badge = EXPORT_FLAG | self.exports.len() as u64;
        let Ok(root) = slots::allocate() else { return };
        if sys::derive(
            self.endpoint,
            root,
            Rights::WRITE.union(Rights::GRANT),
            badge,
        )
        .is_err()
        {
            slots::free(root);
            return;
        }
        match client::announce(service, root) {
            Ok(()) => self.exports.push((service.to_string(), provider)),
            // The parent does not route this service to us: nothing to export.
            Err(_) => release(root),
        }
    }

    /// The parent calls the root of a service this nested init exports:
    /// pass the call on to the child that provides it. The RAM the parent
    /// moved here moves on to that child, and back on close.
    fn export_request(&mut self, export: u64, incoming: &Incoming, server: &mut Endpoint) {
        let reply = match decode::<RootRequest<'_>>(incoming.bytes()) {
            Err(error) => RootReply::Error(error),
            Ok(request) => match self.forward_export(export, request) {
                Ok((reply, cap)) => return server.set_reply(&reply, cap),
                Err(error) => RootReply::Error(error),
            },
        };
        server.set_reply(&reply, None);
    }

    fn forward_export(
        &mut self,
        export: u64,
        request: RootRequest<'_>,
    ) -> Result<(RootReply, Option<CapSlot>), SessionError> {
        let (service, provider) = self
            .exports
            .get(export as usize)
            .cloned()
            .ok_or(SessionError::NoSuchSession)?;
        match request {
            RootRequest::Create { label, args, ram } => {
                let root = self.children[provider]
                    .roots
                    .iter()
                    .find(|(s, _)| *s == service)
                    .map(|(_, r)| *r)
                    .ok_or(SessionError::Unavailable)?;
                let request = RootRequest::Create { label, args, ram };
                let (reply, cap) =
                    self.pay_and_call_root(provider, root, slot::OWN_PD, ram, &request, true)?;
                let RootReply::Created { badge: inner_badge } = reply else {
                    return Err(SessionError::BadRequest);
                };
                let badge = u64::from(self.next_id);
                self.next_id += 1;
                self.export_sessions.push(ExportSession {
                    badge,
                    provider,
                    inner_badge,
                    inner_root: root,
                    ram,
                });
                Ok((RootReply::Created { badge }, cap))
            }
            RootRequest::Upgrade { badge, ram } => {
                let position = self
                    .export_sessions
                    .iter()
                    .position(|e| e.badge == badge)
                    .ok_or(SessionError::NoSuchSession)?;
                let (provider, inner_badge, root) = {
                    let e = &self.export_sessions[position];
                    (e.provider, e.inner_badge, e.inner_root)
                };
                let request = RootRequest::Upgrade {
                    badge: inner_badge,
                    ram,
                };
                self.pay_and_call_root(provider, root, slot::OWN_PD, ram, &request, false)?;
                self.export_sessions[position].ram += ram;
                Ok((RootReply::Done { ram: 0 }, None))
            }
            RootRequest::Close { badge } => {
                let position = self
                    .export_sessions
                    .iter()
                    .position(|e| e.badge == badge)
                    .ok_or(SessionError::NoSuchSession)?;
                let session = self.export_sessions.swap_remove(position);
                let mut returned = 0;
                let close = RootRequest::Close {
                    badge: session.inner_badge,
                };
                if let (Ok(provider_pd), true) = (
                    self.child_pd(session.provider),
                    self.receiving(session.provider),
                ) && let Ok((RootReply::Done { ram }, _)) = client::call::<_, RootReply>(
                    session.inner_root,
                    Interface::Root,
                    &close,
                    None,
                    None,
                ) {
                    returned = ram.min(session.ram);
                    let _ = sys::transfer_quota(provider_pd, slot::OWN_PD, returned, 0);
                }
                Ok((RootReply::Done { ram: returned }, None))
            }
        }
    }

    /// Moves `ram` from Pd `payer` to child `provider` and calls its `root`
    /// with `request` (accepting a capability into a fresh slot when
    /// `with_cap`). Anything but the expected success moves the RAM back and
    /// becomes an error. Only calls a provider that waits in its receive:
    /// init calls roots synchronously.
    fn pay_and_call_root(
        &self,
        provider: usize,
        root: CapSlot,
        payer: CapSlot,
        ram: u64,
        request: &RootRequest<'_>,
        with_cap: bool,
    ) -> Result<(RootReply, Option<CapSlot>), SessionError> {
        let provider_pd = self.child_pd(provider)?;
        if !self.receiving(provider) {
            return Err(SessionError::Unavailable);
        }
        sys::transfer_quota(payer, provider_pd, ram, 0)
            .map_err(|_| SessionError::ClientQuotaExceeded)?;
        let cap = if with_cap {
            Some(slots::allocate().map_err(kernel)?)
        } else {
            None
        };
        let answer = client::call::<_, RootReply>(root, Interface::Root, request, None, cap);
        let outcome = match answer {
            Ok((reply @ RootReply::Created { .. }, true)) if with_cap => Ok((reply, cap)),
            Ok((reply @ RootReply::Done { .. }, _)) if !with_cap => Ok((reply, None)),
            Ok((RootReply::Error(error), _)) | Err(error) => Err(error),
            Ok(_) => Err(SessionError::BadRequest),
        };
        if outcome.is_err() {
            if let Some(cap) = cap {
                slots::free(cap);
            }
            let _ = sys::transfer_quota(provider_pd, payer, ram, 0);
        }
        outcome
    }

    /// Whether child `index`'s thread waits in a receive right now.
    fn receiving(&self, index: usize) -> bool {
        self.children[index].running.as_ref().is_some_and(|child| {
            sys::info(info::THREAD_RECEIVING, u64::from(child.thread.0)) == Ok((1, 0))
        })
    }

    fn child_pd(&self, index: usize) -> Result<CapSlot, SessionError> {
        self.children[index]
            .running
            .as_ref()
            .map(|c| c.pd)
            .ok_or(SessionError::Unavailable)
    }

    fn open_session(
        &mut self,
        index: usize,
        service: &str,
        label: &str,
        args: &[u8],
        ram: u64,
        arrived: Option<CapSlot>,
    ) -> Result<(u32, CapSlot), SessionError> {
        if !ram.is_multiple_of(4096) {
            return Err(SessionError::BadRequest);
        }
        let client_pd = self.child_pd(index)?;
        let id = self.next_id;
        if service == name::ROM && label == "config" {
            sys::transfer_quota(client_pd, slot::OWN_PD, ram, 0)
                .map_err(|_| SessionError::ClientQuotaExceeded)?;
            return match self.config_rom(index, id, ram) {
                Ok(cap) => {
                    self.next_id += 1;
                    Ok((id, cap))
                }
                Err(error) => {
                    let _ = sys::transfer_quota(slot::OWN_PD, client_pd, ram, 0);
                    Err(error)
                }
            };
        }
        let child_name = self.children[index].config.name.clone();
        match route_session(&self.config, &child_name, service, label) {
            RouteDecision::Denied { reason, .. } => {
                self.say(&format!(
                    "denied {child_name}'s {service} session (label \"{label}\"): {reason}"
                ));
                Err(SessionError::Denied)
            }
            RouteDecision::Parent { label, .. } => {
                sys::transfer_quota(client_pd, slot::OWN_PD, ram, 0)
                    .map_err(|_| SessionError::ClientQuotaExceeded)?;
                match client::open_session_raw(slot::PARENT, service, &label, args, ram, arrived) {
                    Ok(session) => {
                        self.next_id += 1;
                        self.sessions.push(SessionRecord {
                            id,
                            client: index,
                            via: Via::Parent(session),
                            cap: session.cap,
                            ram,
                        });
                        Ok((id, session.cap))
                    }
                    Err(error) => {
                        let _ = sys::transfer_quota(slot::OWN_PD, client_pd, ram, 0);
                        Err(error)
                    }
                }
            }
            RouteDecision::Child {
                provider, label, ..
            } => {
                let provider_index = self
                    .children
                    .iter()
                    .position(|c| c.config.name == provider)
                    .ok_or(SessionError::Unavailable)?;
                let root = self.children[provider_index]
                    .roots
                    .iter()
                    .find(|(s, _)| s == service)
                    .map(|(_, r)| *r)
                    .ok_or(SessionError::Unavailable)?;
                let request = RootRequest::Create {
                    label: &label,
                    args,
                    ram,
                };
                let (reply, cap) =
                    self.pay_and_call_root(provider_index, root, client_pd, ram, &request, true)?;
                let (RootReply::Created { badge }, Some(cap)) = (reply, cap) else {
                    return Err(SessionError::BadRequest);
                };
                self.next_id += 1;
                self.sessions.push(SessionRecord {
                    id,
                    client: index,
                    via: Via::Child {
                        provider: provider_index,
                        badge,
                        root,
                    },
                    cap,
                    ram,
                });
                Ok((id, cap))
            }
        }
    }

    /// Serves a child's `config` ROM: its config text in a dataspace paid from `ram`.
    fn config_rom(&mut self, index: usize, id: u32, ram: u64) -> Result<CapSlot, SessionError> {
        let text = self.children[index]
            .config
            .config
            .as_ref()
            .map(|c| c.as_text().to_string())
            .unwrap_or_default();
        let size = (text.len() as u64).max(1);
        let needed = size.div_ceil(4096) * 4096 + 4096;
        if ram < needed {
            return Err(SessionError::InsufficientQuota {
                needed: needed - ram,
            });
        }
        let dataspace = arbor::vspace::dataspace_with(text.as_bytes()).map_err(kernel)?;
        let cap = slots::allocate().map_err(kernel)?;
        sys::derive(
            self.endpoint,
            cap,
            Rights::WRITE.union(Rights::GRANT),
            LOCAL_FLAG | u64::from(id),
        )
        .map_err(kernel)?;
        self.sessions.push(SessionRecord {
            id,
            client: index,
            via: Via::Config {
                dataspace,
                size: text.len() as u64,
            },
            cap,
            ram,
        });
        Ok(cap)
    }

    fn local_request(&mut self, id: u64, incoming: &Incoming, server: &mut Endpoint) {
        let record = self.sessions.iter().find(|s| u64::from(s.id) == id);
        match (
            record.map(|r| &r.via),
            decode::<RomRequest>(incoming.bytes()),
        ) {
            (Some(Via::Config { dataspace, size }), Ok(RomRequest::Dataspace)) => {
                server.set_reply(&RomReply::Dataspace { size: *size }, Some(*dataspace));
            }
            (None, _) => server.set_reply(&RomReply::Error(SessionError::NoSuchSession), None),
            _ => server.set_reply(&RomReply::Error(SessionError::BadRequest), None),
        }
    }

    fn upgrade(&mut self, index: usize, id: u32, ram: u64) -> Result<(), SessionError> {
        let client_pd = self.child_pd(index)?;
        let position = self
            .sessions
            .iter()
            .position(|s| s.id == id && s.client == index)
            .ok_or(SessionError::NoSuchSession)?;
        match self.sessions[position].via {
            Via::Parent(session) => {
                sys::transfer_quota(client_pd, slot::OWN_PD, ram, 0)
                    .map_err(|_| SessionError::ClientQuotaExceeded)?;
                if let Err(error) = client::upgrade_session(&session, ram) {
                    let _ = sys::transfer_quota(slot::OWN_PD, client_pd, ram, 0);
                    return Err(error);
                }
            }
            Via::Child {
                provider,
                badge,
                root,
            } => {
                let request = RootRequest::Upgrade { badge, ram };
                self.pay_and_call_root(provider, root, client_pd, ram, &request, false)?;
            }
            Via::Config { .. } => return Err(SessionError::BadRequest),
        }
        self.sessions[position].ram += ram;
        Ok(())
    }

    /// Closes session `id` of child `index`; its RAM goes back to the child
    /// (or to init, when the child is gone).
    fn close(&mut self, index: usize, id: u32) -> Result<(), SessionError> {
        let position = self
            .sessions
            .iter()
            .position(|s| s.id == id && s.client == index)
            .ok_or(SessionError::NoSuchSession)?;
        let record = self.sessions.swap_remove(position);
        let back_to = self.child_pd(index).unwrap_or(slot::OWN_PD);
        match record.via {
            Via::Parent(session) => {
                let _ = client::close_session(session);
                let _ = sys::transfer_quota(slot::OWN_PD, back_to, record.ram, 0);
            }
            Via::Child {
                provider,
                badge,
                root,
            } => {
                // A provider that cannot answer now keeps the session's RAM
                // until it closes or dies (then it returns to init).
                if let (Ok(provider_pd), true) = (self.child_pd(provider), self.receiving(provider))
                {
                    let returned = match client::call::<_, RootReply>(
                        root,
                        Interface::Root,
                        &RootRequest::Close { badge },
                        None,
                        None,
                    ) {
                        Ok((RootReply::Done { ram }, _)) => ram.min(record.ram),
                        _ => 0,
                    };
                    let _ = sys::transfer_quota(provider_pd, back_to, returned, 0);
                }
                release(record.cap);
            }
            Via::Config { dataspace, .. } => {
                let _ = sys::destroy(dataspace);
                release(dataspace);
                let _ = sys::destroy(record.cap);
                release(record.cap);
                let _ = sys::transfer_quota(slot::OWN_PD, back_to, record.ram, 0);
            }
        }
        Ok(())
    }

    fn child_faulted(&mut self, index: usize, incoming: &Incoming) {
        let Some(state) = self.children.get(index) else {
            return;
        };
        let name = state.config.name.clone();
        let [kind, address, ip, code] = incoming.words;
        let kind =
            FaultKind::from_raw(kind).map_or("unknown fault".to_string(), |k| format!("{k:?}"));
        self.say(&format!(
            "{name} faulted: {kind} at address {address:#x}, ip {ip:#x}, code {code:#x}"
        ));
        self.tear_down(index);
        if self.children[index].free_after_first_fault.is_none() {
            self.children[index].free_after_first_fault = Some(own_quota());
        }
        let restarts = self.children[index].restarts;
        match policy::after_fault(&self.children[index].config.restart, restarts) {
            AfterFault::Hold => {
                self.children[index].status = Status::Held;
                self.say(&format!("{name} stays stopped (restart: Never)"));
            }
            AfterFault::GiveUp { max } => {
                self.children[index].status = Status::Held;
                let (ram, caps) = own_quota();
                let verdict = match self.children[index].free_after_first_fault {
                    Some(first) if first == (ram, caps) => {
                        "the same as after its first fault".to_string()
                    }
                    Some((first_ram, first_caps)) => format!(
                        "LEAKED {} bytes and {} caps since its first fault",
                        first_ram as i64 - ram as i64,
                        first_caps as i64 - caps as i64
                    ),
                    None => String::new(),
                };
                self.say(&format!(
                    "{name} gave up after {max} restarts; init has {} KiB RAM and {caps} caps free, {verdict}",
                    ram / 1024
                ));
            }
            AfterFault::Restart {
                attempt,
                backoff_ms,
            } => {
                self.children[index].restarts = attempt;
                let max = match self.children[index].config.restart {
                    arbor_config::Restart::OnFault { max, .. } => max,
                    arbor_config::Restart::Never => 0,
                };
                self.say(&format!(
                    "restarting {name} ({attempt} of {max}) after {backoff_ms} ms"
                ));
                self.sleep(backoff_ms);
                self.start_child(index);
            }
        }
    }

    /// Stops a child for good: closes the sessions it holds and those it
    /// serves, destroys its Pd (its quota returns to init) and forgets the
    /// capabilities init made for it.
    fn tear_down(&mut self, index: usize) {
        let held: Vec<u32> = self
            .sessions
            .iter()
            .filter(|s| s.client == index)
            .map(|s| s.id)
            .collect();
        for id in held {
            let _ = self.close(index, id);
        }
        // Sessions it served die with it: their clients' next calls fail and
        // they may ask again once it is back. The RAM they donated returns to
        // init with the Pd; hand it back to each client that still runs.
        let served: Vec<SessionRecord> = {
            let (served, kept) = core::mem::take(&mut self.sessions)
                .into_iter()
                .partition(|s| matches!(s.via, Via::Child { provider, .. } if provider == index));
            self.sessions = kept;
            served
        };
        self.export_sessions.retain(|e| e.provider != index);
        let state = &mut self.children[index];
        for (_, root) in state.roots.drain(..) {
            release(root);
        }
        for cap in state.own_caps.drain(..) {
            release(cap);
        }
        if let Some(child) = state.running.take() {
            let _ = child.destroy();
        }
        for record in served {
            if let Ok(client_pd) = self.child_pd(record.client) {
                let _ = sys::transfer_quota(slot::OWN_PD, client_pd, record.ram, 0);
            }
            release(record.cap);
        }
        let _ = ROOT_BADGE;
    }
}
