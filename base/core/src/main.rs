//! Core: the first component the kernel starts, and the outermost parent.
//!
//! Core owns what the kernel handed over at boot — all free RAM, the boot
//! archive, the console and the platform capability — and serves it as
//! sessions: ROM (boot modules), LOG (the serial console, each line
//! prefixed with the session label), IRQ, IO_PORT and IO_MEM (each resource
//! granted to one session at a time). It starts exactly one child, init,
//! with all RAM but a small reserve, and holds no policy: who gets which
//! device is decided by init's routes and the children's hardware
//! declarations. The one rule core keeps itself: ranges no child may have
//! (PCI configuration space, the ECAM window, the kernel's own devices;
//! `arbor_config::hardware::RESERVED`) are refused to every label, whatever
//! init forwards.
//!
//! Core never trusts init or init's clients: requests are decoded
//! defensively, sizes checked, and every session is paid from the RAM and
//! capability quota donated with it. Core answers every request at once,
//! and a failed receive or slot allocation refuses that one request and is
//! logged: nothing a child does through init ends core's serve loop.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod claims;

use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{self, CapSlot, FAULT_LABEL, FaultKind, ObjectKind, Rights, info, slot};
use arbor::{loader, println, slots, sys};
use arbor_config::hardware::{self, Claim};
use arbor_sessions::client::{Arrival, Endpoint, Incoming, LOG_SESSION_RAM};
use arbor_sessions::parent::{ParentReply, ParentRequest};
use arbor_sessions::services::{
    IoMemArgs, IoPortArgs, IrqArgs, LogRequest, RomReply, RomRequest, SimpleReply, name,
};
use arbor_sessions::{Interface, SessionError, decode};
use claims::{Claims, Resource};

arbor::entry!(run);

/// Badge of init's parent capability.
const INIT_BADGE: u64 = 1 << 62;
/// Badge of init's fault reports.
const FAULT_BADGE: u64 = (1 << 62) + 1;
/// RAM core keeps for itself (its own heap and bookkeeping).
const RESERVE_RAM: u64 = 1 << 20;
/// Capability slots core keeps for itself.
const RESERVE_CAPS: u64 = 1024;
/// RAM a session of a kernel resource (IoPorts, Irq, IoMem) costs: its object.
const RESOURCE_SESSION_RAM: u64 = 4096;

/// What a session hands out.
enum Kind {
    Log,
    /// The module's copy, and a read-only capability to it for clients.
    Rom {
        dataspace: CapSlot,
        read_only: CapSlot,
        size: u64,
    },
    /// A kernel resource (IoPorts, Irq or device dataspace): the session capability itself.
    Resource,
}

struct Session {
    id: u32,
    label: String,
    kind: Kind,
    /// The capability given out (a badged endpoint, or the resource itself).
    cap: CapSlot,
    /// What init donated for it, upgrades included.
    ram: u64,
    caps: u64,
}

struct Core {
    endpoint: CapSlot,
    init_pd: CapSlot,
    sessions: Vec<Session>,
    claims: Claims,
    next_id: u32,
    /// The root init's child the scenario makes the platform driver.
    platform_driver: Option<String>,
}

fn run(_argument: u64) {
    println!("core: Arbor core starting");
    if let Err(reason) = start() {
        println!("core: {reason}");
        arbor::platform::qemu_exit(false);
    }
}

fn start() -> Result<(), String> {
    let init_image = arbor::rom::module("init")
        .map_err(|e| alloc::format!("no init module in the boot archive ({e})"))?;
    let endpoint = new_slot()?;
    sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0)
        .map_err(|e| alloc::format!("endpoint: {e}"))?;
    let parent_cap = derive(endpoint, Rights::WRITE.union(Rights::GRANT), INIT_BADGE)?;
    let fault_cap = derive(endpoint, Rights::WRITE.union(Rights::GRANT), FAULT_BADGE)?;

    let (ram_limit, ram_used) =
        sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0)).map_err(|e| alloc::format!("{e}"))?;
    let (caps_limit, caps_used) =
        sys::info(info::PD_CAPS, u64::from(slot::OWN_PD.0)).map_err(|e| alloc::format!("{e}"))?;
    let ram = (ram_limit - ram_used).saturating_sub(RESERVE_RAM) / 4096 * 4096;
    let caps = (caps_limit - caps_used).saturating_sub(RESERVE_CAPS);
    let spec = loader::ChildSpec {
        image: init_image,
        ram,
        caps,
        priority: abi::MAX_PRIORITY - 1,
        argument: 0,
        fault_endpoint: Some(fault_cap),
        grants: &[(parent_cap, slot::PARENT, Rights::WRITE)],
    };
    let init = loader::spawn(&spec).map_err(|e| alloc::format!("starting init failed: {e}"))?;
    println!(
        "core: started init with {} KiB RAM and {} capabilities",
        ram / 1024,
        caps
    );
    let mut core = Core {
        endpoint,
        init_pd: init.pd,
        sessions: Vec::new(),
        claims: Claims::default(),
        next_id: 1,
        platform_driver: claims::platform_driver(),
    };
    if let Some(name) = &core.platform_driver {
        println!(
            "core: \"{name}\" is the platform driver: PCI configuration space, BARs and PCI interrupt lines are its alone"
        );
    }
    core.serve()
}

fn new_slot() -> Result<CapSlot, String> {
    slots::allocate().map_err(|e| alloc::format!("out of capability slots ({e})"))
}

fn derive(source: CapSlot, rights: Rights, badge: u64) -> Result<CapSlot, String> {
    let dest = new_slot()?;
    sys::derive(source, dest, rights, badge).map_err(|e| alloc::format!("derive: {e}"))?;
    Ok(dest)
}

fn kernel(error: abi::Error) -> SessionError {
    arbor_sessions::client::kernel_error(error)
}

/// The module a ROM label names: its last element ("init -> hello -> config" → "config").
fn module_name(label: &str) -> &str {
    label.rsplit(" -> ").next().unwrap_or(label)
}

impl Core {
    fn serve(&mut self) -> Result<(), String> {
        let mut server = Endpoint::new(self.endpoint);
        let mut receive = new_slot().ok();
        loop {
            let (incoming, arrival) = match server.next_keeping(&mut receive) {
                Ok(received) => received,
                Err(error) => {
                    println!("core: receive failed: {error}; waiting again");
                    continue;
                }
            };
            let (arrived, refused) = match arrival {
                Arrival::Cap(cap) => (Some(cap), None),
                Arrival::Nothing => (None, None),
                Arrival::Dropped(error) => {
                    println!("core: {error}: refused a request that carried a capability");
                    (None, Some(error))
                }
            };
            match incoming.badge.0 {
                _ if let Some(error) = refused => {
                    server.set_reply(&ParentReply::Error(kernel(error)), None)
                }
                FAULT_BADGE if incoming.label == FAULT_LABEL => self.init_faulted(&incoming),
                INIT_BADGE => self.parent_request(&incoming, arrived, &mut server),
                badge => self.session_request(badge, &incoming, &mut server),
            }
            if let Some(cap) = arrived {
                // A capability nobody kept (e.g. a notification for a failed Irq claim).
                if !self.sessions.iter().any(|s| s.cap == cap) {
                    let _ = sys::delete(cap);
                    slots::free(cap);
                }
            }
        }
    }

    fn init_faulted(&self, incoming: &Incoming) {
        let [kind, address, ip, code] = incoming.words;
        let kind = FaultKind::from_raw(kind);
        println!(
            "core: init faulted: {kind:?} at address {address:#x}, ip {ip:#x} (code {code:#x}); the system is stopped"
        );
        arbor::platform::qemu_exit(false);
    }

    fn parent_request(
        &mut self,
        incoming: &Incoming,
        arrived: Option<CapSlot>,
        server: &mut Endpoint,
    ) {
        let request = match (
            incoming.interface,
            decode::<ParentRequest<'_>>(incoming.bytes()),
        ) {
            (Some(Interface::Parent), Ok(request)) => request,
            _ => return server.set_reply(&ParentReply::Error(SessionError::BadRequest), None),
        };
        match request {
            ParentRequest::Session {
                service,
                label,
                args,
                ram,
                caps,
            } => {
                let label = arbor_config_free_compose("init", label);
                match self.open(service, &label, args, ram, caps, arrived) {
                    Ok((id, cap)) => {
                        server.set_reply(&ParentReply::Session { session: id }, Some(cap))
                    }
                    Err(error) => {
                        // Too little quota is routine (the client retries with
                        // the amount named); anything else is worth a line.
                        if !matches!(
                            error,
                            SessionError::InsufficientQuota { .. }
                                | SessionError::InsufficientCaps { .. }
                        ) {
                            println!("core: refused {service} session \"{label}\": {error}");
                        }
                        server.set_reply(&ParentReply::Error(error), None)
                    }
                }
            }
            ParentRequest::Upgrade { session, ram, caps } => {
                let result = match self.sessions.iter_mut().find(|s| s.id == session) {
                    None => Err(SessionError::NoSuchSession),
                    Some(_) if !ram.is_multiple_of(4096) => Err(SessionError::BadRequest),
                    Some(record) => {
                        match sys::transfer_quota(self.init_pd, slot::OWN_PD, ram, caps) {
                            Ok(()) => {
                                record.ram += ram;
                                record.caps += caps;
                                Ok(())
                            }
                            Err(_) => Err(SessionError::ClientQuotaExceeded),
                        }
                    }
                };
                server.set_reply(
                    &result.map_or_else(ParentReply::Error, |()| ParentReply::Done),
                    None,
                );
            }
            ParentRequest::Close { session } => {
                let reply = match self.close(session) {
                    Ok(()) => ParentReply::Done,
                    Err(error) => ParentReply::Error(error),
                };
                server.set_reply(&reply, None);
            }
            ParentRequest::Announce { service } => {
                println!("core: init announced \"{service}\", but core has no other clients");
                server.set_reply(&ParentReply::Error(SessionError::Denied), None);
            }
            // Core answers every session at once: nothing is ever pending
            // here, and init serves no work to core.
            ParentRequest::SessionStatus { .. } => {
                server.set_reply(&ParentReply::Error(SessionError::NoSuchSession), None)
            }
            ParentRequest::NextRequest => server.set_reply(&ParentReply::NoWork, None),
            ParentRequest::Deliver { .. } => {
                server.set_reply(&ParentReply::Error(SessionError::BadRequest), None)
            }
            ParentRequest::Exit { code } => {
                println!("core: init exited with code {code}");
                arbor::platform::qemu_exit(code == 0);
                server.set_reply(&ParentReply::Done, None);
            }
        }
    }

    /// Creates a session paid from `ram` and `caps`, which are first moved
    /// from init to core.
    fn open(
        &mut self,
        service: &str,
        label: &str,
        args: &[u8],
        ram: u64,
        caps: u64,
        arrived: Option<CapSlot>,
    ) -> Result<(u32, CapSlot), SessionError> {
        if !ram.is_multiple_of(4096) {
            return Err(SessionError::BadRequest);
        }
        let needed_caps = session_caps(service);
        if caps < needed_caps {
            return Err(SessionError::InsufficientCaps {
                needed: needed_caps - caps,
            });
        }
        sys::transfer_quota(self.init_pd, slot::OWN_PD, ram, caps)
            .map_err(|_| SessionError::ClientQuotaExceeded)?;
        let id = self.next_id;
        let result = self.create(id, service, label, args, ram, arrived);
        match result {
            Ok((kind, cap)) => {
                self.next_id += 1;
                self.sessions.push(Session {
                    id,
                    label: String::from(label),
                    kind,
                    cap,
                    ram,
                    caps,
                });
                Ok((id, cap))
            }
            Err(error) => {
                self.claims.release(id);
                if let Err(refund) = sys::transfer_quota(slot::OWN_PD, self.init_pd, ram, caps) {
                    println!(
                        "core: could not refund a refused {service} session's quota: {refund}"
                    );
                }
                Err(error)
            }
        }
    }

    fn create(
        &mut self,
        id: u32,
        service: &str,
        label: &str,
        args: &[u8],
        ram: u64,
        arrived: Option<CapSlot>,
    ) -> Result<(Kind, CapSlot), SessionError> {
        let needs = |cost: u64| {
            if ram < cost {
                Err(SessionError::InsufficientQuota { needed: cost - ram })
            } else {
                Ok(())
            }
        };
        match service {
            name::LOG => {
                needs(LOG_SESSION_RAM)?;
                Ok((Kind::Log, self.session_cap(u64::from(id))?))
            }
            name::ROM => {
                let module =
                    arbor::rom::module(module_name(label)).map_err(|_| SessionError::Denied)?;
                let size = module.len() as u64;
                needs(size.div_ceil(4096) * 4096 + 4096)?;
                let dataspace = copy_to_dataspace(module)?;
                let read_only = new_resource_slot().and_then(|cap| {
                    sys::derive(dataspace, cap, Rights::READ.union(Rights::GRANT), 0)
                        .map_err(kernel)
                        .map(|()| cap)
                });
                match (read_only, self.session_cap(u64::from(id))) {
                    (Ok(read_only), Ok(cap)) => Ok((
                        Kind::Rom {
                            dataspace,
                            read_only,
                            size,
                        },
                        cap,
                    )),
                    (read_only, cap) => {
                        let _ = sys::destroy(dataspace);
                        slots::release(dataspace);
                        for slot in [read_only.ok(), cap.as_ref().ok().copied()]
                            .into_iter()
                            .flatten()
                        {
                            slots::release(slot);
                        }
                        Err(cap.err().unwrap_or(SessionError::Kernel(0)))
                    }
                }
            }
            name::IO_PORT => {
                needs(RESOURCE_SESSION_RAM)?;
                let IoPortArgs { first, count } = decode(args)?;
                if count == 0 || u32::from(first) + u32::from(count) > 0x1_0000 {
                    return Err(SessionError::BadRequest);
                }
                refuse_reserved(
                    &Claim::IoPorts { first, count },
                    label,
                    self.platform_driver.as_deref(),
                )?;
                self.claim(
                    Resource::IoPorts {
                        first: u32::from(first),
                        count: u32::from(count),
                    },
                    id,
                )?;
                let cap = new_resource_slot()?;
                sys::create_io_ports(
                    slot::PLATFORM,
                    slot::OWN_PD,
                    cap,
                    u64::from(first),
                    u64::from(count),
                )
                .map_err(kernel)
                .map(|()| (Kind::Resource, cap))
            }
            name::IRQ => {
                needs(RESOURCE_SESSION_RAM)?;
                let IrqArgs { line } = decode(args)?;
                refuse_reserved(&Claim::Irq { line }, label, self.platform_driver.as_deref())?;
                let notification = arrived.ok_or(SessionError::BadRequest)?;
                self.claim(Resource::Irq { line }, id)?;
                let cap = new_resource_slot()?;
                let created = sys::create_irq(
                    slot::PLATFORM,
                    slot::OWN_PD,
                    cap,
                    u64::from(line),
                    notification,
                );
                let _ = sys::delete(notification);
                created.map_err(kernel).map(|()| (Kind::Resource, cap))
            }
            name::IO_MEM => {
                needs(RESOURCE_SESSION_RAM)?;
                let IoMemArgs { phys, size } = decode(args)?;
                refuse_reserved(
                    &Claim::IoMem { base: phys, size },
                    label,
                    self.platform_driver.as_deref(),
                )?;
                self.claim(Resource::IoMem { phys, size }, id)?;
                let cap = new_resource_slot()?;
                sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, cap, phys, size)
                    .map_err(kernel)
                    .map(|()| (Kind::Resource, cap))
            }
            _ => Err(SessionError::Denied),
        }
    }

    fn claim(&mut self, resource: Resource, id: u32) -> Result<(), SessionError> {
        if self.claims.claim(resource, id) {
            Ok(())
        } else {
            Err(SessionError::AlreadyClaimed)
        }
    }

    /// An endpoint capability badged with the session id, for the client to call.
    fn session_cap(&self, badge: u64) -> Result<CapSlot, SessionError> {
        let cap = new_resource_slot()?;
        sys::derive(
            self.endpoint,
            cap,
            Rights::WRITE.union(Rights::GRANT),
            badge,
        )
        .map_err(kernel)?;
        Ok(cap)
    }

    fn close(&mut self, id: u32) -> Result<(), SessionError> {
        let index = self
            .sessions
            .iter()
            .position(|s| s.id == id)
            .ok_or(SessionError::NoSuchSession)?;
        let session = self.sessions.swap_remove(index);
        // Destroying the object revokes every copy the client holds.
        let _ = sys::destroy(session.cap);
        slots::release(session.cap);
        if let Kind::Rom {
            dataspace,
            read_only,
            ..
        } = session.kind
        {
            let _ = sys::destroy(dataspace);
            slots::release(dataspace);
            slots::release(read_only);
        }
        self.claims.release(id);
        sys::transfer_quota(slot::OWN_PD, self.init_pd, session.ram, session.caps).map_err(kernel)
    }

    fn session_request(&mut self, badge: u64, incoming: &Incoming, server: &mut Endpoint) {
        let Some(session) = u32::try_from(badge)
            .ok()
            .and_then(|id| self.sessions.iter().find(|s| s.id == id))
        else {
            return server.set_reply(&SimpleReply::Error(SessionError::NoSuchSession), None);
        };
        match session.kind {
            Kind::Log => {
                let reply = match decode::<LogRequest<'_>>(incoming.bytes()) {
                    Ok(LogRequest::Write { text }) => {
                        print_labelled(&session.label, text);
                        SimpleReply::Done
                    }
                    Err(error) => SimpleReply::Error(error),
                };
                server.set_reply(&reply, None);
            }
            Kind::Rom {
                read_only, size, ..
            } => match decode::<RomRequest>(incoming.bytes()) {
                Ok(RomRequest::Dataspace) => {
                    server.set_reply(&RomReply::Dataspace { size }, Some(read_only))
                }
                Err(error) => server.set_reply(&RomReply::Error(error), None),
            },
            Kind::Resource => server.set_reply(&SimpleReply::Error(SessionError::BadRequest), None),
        }
    }
}

/// Capability slots a session of `service` occupies in core: its
/// capability, and a ROM's dataspace and read-only copy.
fn session_caps(service: &str) -> u64 {
    match service {
        name::ROM => 3,
        _ => 1,
    }
}

/// Refuses `claim` if it touches a range no child may have, saying so with
/// the label that asked. The platform driver's exception is decided in
/// `arbor_config::hardware::refusal`, for the label of the child the
/// scenario names (`platform_driver`).
fn refuse_reserved(
    claim: &Claim,
    label: &str,
    platform_driver: Option<&str>,
) -> Result<(), SessionError> {
    let is_platform_driver =
        platform_driver.is_some_and(|name| hardware::label_is_from(label, name));
    match hardware::refusal(claim, is_platform_driver) {
        None => Ok(()),
        Some(reserved) => {
            println!("core: refused {claim} to \"{label}\": {reserved}");
            Err(SessionError::Denied)
        }
    }
}

/// Composes `"{parent} -> {label}"` (the label core's client, init, sent).
fn arbor_config_free_compose(parent: &str, label: &str) -> String {
    if label.is_empty() {
        String::from(parent)
    } else {
        alloc::format!("{parent} -> {label}")
    }
}

fn new_resource_slot() -> Result<CapSlot, SessionError> {
    slots::allocate().map_err(kernel)
}

/// Copies bytes into a fresh dataspace paid by core (from the session's RAM).
fn copy_to_dataspace(bytes: &[u8]) -> Result<CapSlot, SessionError> {
    arbor::vspace::dataspace_with(bytes).map_err(kernel)
}

/// Prints `text` on the console, each line prefixed with `[label]`, with
/// control characters (which could forge or hide lines) replaced.
fn print_labelled(label: &str, text: &str) {
    for line in text.trim_end_matches('\n').split('\n') {
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
            .collect();
        let clean_label: String = label
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        println!("[{clean_label}] {clean}");
    }
}
