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
//! Its sessions are written against the server framework's root mode
//! (`arbor_sessions::server::Root`): the session table, badges, per-session
//! quota and call dispatch are the framework's; core says what a session
//! holds (`Sessions`) and moves the donation from init and back.
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
use arbor::abi::{self, CapSlot, FAULT_LABEL, FaultKind, ObjectKind, Rights, info, slot};
use arbor::guard::{QuotaLoan, SlotGuard};
use arbor::{loader, println, slots, sys};
use arbor_config::hardware::{self, Claim};
use arbor_sessions::client::{Endpoint, Incoming, LOG_SESSION_RAM};
use arbor_sessions::parent::{ParentReply, ParentRequest};
use arbor_sessions::server::{Call, Root, Service};
use arbor_sessions::services::{
    IoMemArgs, IoPortArgs, IrqArgs, LogRequest, RomReply, RomRequest, SimpleReply, name,
};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{Interface, SessionError, decode};
use claims::{Claims, Resource};
use serde::Serialize;

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

/// What a session holds.
enum Kind {
    Log,
    /// The module's copy, and a read-only capability to it for clients.
    Rom {
        dataspace: CapSlot,
        read_only: CapSlot,
        size: u64,
    },
    /// A kernel resource (IoPorts, Irq or device dataspace): the session
    /// capability itself, and the claim it holds.
    Resource {
        cap: CapSlot,
        claim: u32,
    },
}

/// Core's sessions, served through the framework's [`Root`]: what each
/// one holds, the hardware claimed, and how calls on them are answered.
struct Sessions {
    claims: Claims,
    next_claim: u32,
    /// The capability that came with the request being created (an Irq
    /// session's notification); the serve loop releases its slot.
    arrived: Option<CapSlot>,
    /// The root init's child the scenario makes the platform driver.
    platform_driver: Option<String>,
}

/// A reply on one of core's sessions: Log's or Rom's.
#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    Simple(SimpleReply),
    Rom(RomReply),
}

struct Core {
    endpoint: CapSlot,
    init_pd: CapSlot,
    root: Root<Sessions>,
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
    let sessions = Sessions {
        claims: Claims::default(),
        next_claim: 1,
        arrived: None,
        platform_driver: claims::platform_driver(),
    };
    if let Some(name) = &sessions.platform_driver {
        println!(
            "core: \"{name}\" is the platform driver: PCI configuration space, BARs and PCI interrupt lines are its alone"
        );
    }
    let mut core = Core {
        endpoint,
        init_pd: init.pd,
        root: Root::new(endpoint, sessions),
    };
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

impl Core {
    fn serve(&mut self) -> Result<(), String> {
        let mut server = Endpoint::new(self.endpoint);
        let mut receive = new_slot().ok();
        loop {
            let Some((incoming, arrived)) =
                server.next_parent_request(&mut receive, |line| println!("core: {line}"))
            else {
                continue;
            };
            match incoming.badge.0 {
                FAULT_BADGE if incoming.label == FAULT_LABEL => self.init_faulted(&incoming),
                INIT_BADGE => self.parent_request(&incoming, arrived, &mut server),
                badge => {
                    // Core's sessions take no capabilities with their calls.
                    let mut no_receive = CapSlot(0);
                    let (reply, cap) = self.root.call(badge, &incoming, &mut no_receive);
                    server.set_reply(&reply, cap);
                }
            }
            if let Some(cap) = arrived {
                // A capability nobody kept (e.g. a notification for a failed Irq claim).
                if !self.root.holds(cap) {
                    slots::release(cap);
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
            ParentRequest::Session(call) => {
                let (service, label) = (
                    call.service,
                    arbor_config::compose_label("init", call.label),
                );
                match self.open(service, &label, call.args, call.quota(), arrived) {
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
                let result = self.upgrade(session, Quota { ram, caps });
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
    /// from init to core (and back, if the session is refused).
    fn open(
        &mut self,
        service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
        arrived: Option<CapSlot>,
    ) -> Result<(u32, CapSlot), SessionError> {
        let Quota { ram, caps } = quota;
        if !ram.is_multiple_of(4096) {
            return Err(SessionError::BadRequest);
        }
        let needed_caps = session_caps(service);
        if caps < needed_caps {
            return Err(SessionError::InsufficientCaps {
                needed: needed_caps - caps,
            });
        }
        // Back to init on every way out but success.
        let loan = QuotaLoan::take(self.init_pd, slot::OWN_PD, ram, caps, |failed| {
            println!("core: refund of a refused {service} session: {failed}")
        })
        .map_err(|_| SessionError::ClientQuotaExceeded)?;
        self.root.service.arrived = arrived;
        let opened = self.root.open(service, label, args, quota);
        self.root.service.arrived = None;
        let (badge, cap) = opened?;
        // Session ids travel as u32: a badge past them is refused.
        let Ok(id) = u32::try_from(badge) else {
            self.refund_closed(badge);
            return Err(SessionError::Unavailable);
        };
        loan.keep();
        Ok((id, cap))
    }

    /// More quota for session `id`, moved from init first.
    fn upgrade(&mut self, id: u32, more: Quota) -> Result<(), SessionError> {
        if !more.ram.is_multiple_of(4096) {
            return Err(SessionError::BadRequest);
        }
        let loan = QuotaLoan::take(self.init_pd, slot::OWN_PD, more.ram, more.caps, |failed| {
            println!("core: refund of a refused upgrade of session {id}: {failed}")
        })
        .map_err(|_| SessionError::ClientQuotaExceeded)?;
        self.root.upgrade(u64::from(id), more)?;
        loan.keep();
        Ok(())
    }

    fn close(&mut self, id: u32) -> Result<(), SessionError> {
        let quota = self.root.close(u64::from(id))?;
        self.refund(id, quota)
    }

    /// Closes a session that was opened but cannot be handed out.
    fn refund_closed(&mut self, badge: u64) {
        if let Ok(quota) = self.root.close(badge) {
            let _logged = self.refund(0, quota);
        }
    }

    /// Gives a closed session's donation back to init; a refusal is logged.
    fn refund(&self, id: u32, quota: Quota) -> Result<(), SessionError> {
        sys::transfer_quota(slot::OWN_PD, self.init_pd, quota.ram, quota.caps).map_err(|error| {
            println!(
                "core: could not refund {} bytes and {} caps of closed session {id} to init: {error}",
                quota.ram, quota.caps
            );
            SessionError::from(error)
        })
    }
}

impl Service for Sessions {
    type Session = Kind;
    type Reply = Reply;

    fn create(
        &mut self,
        service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
    ) -> Result<Kind, SessionError> {
        let ram = quota.ram;
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
                Ok(Kind::Log)
            }
            name::ROM => {
                let module =
                    // The module a ROM label names is its last element; init refused
                    // any element that could pass for two (arbor_config::label).
                    arbor::rom::module(arbor_config::label::last_element(label)).map_err(|_| SessionError::Denied)?;
                let size = module.len() as u64;
                needs(size.div_ceil(4096) * 4096 + 4096)?;
                // Each piece is undone if a later one fails.
                let dataspace = SlotGuard::adopt(copy_to_dataspace(module)?).destroying();
                let read_only = SlotGuard::allocate()?;
                sys::derive(
                    dataspace.slot(),
                    read_only.slot(),
                    Rights::READ.union(Rights::GRANT),
                    0,
                )?;
                Ok(Kind::Rom {
                    dataspace: dataspace.keep(),
                    read_only: read_only.keep(),
                    size,
                })
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
                let claim = self.claim(Resource::IoPorts {
                    first: u32::from(first),
                    count: u32::from(count),
                })?;
                let cap = SlotGuard::allocate()?;
                sys::create_io_ports(
                    slot::PLATFORM,
                    slot::OWN_PD,
                    cap.slot(),
                    u64::from(first),
                    u64::from(count),
                )?;
                Ok(Kind::Resource {
                    cap: cap.keep(),
                    claim: claim.keep(),
                })
            }
            name::IRQ => {
                needs(RESOURCE_SESSION_RAM)?;
                let IrqArgs { line } = decode(args)?;
                refuse_reserved(&Claim::Irq { line }, label, self.platform_driver.as_deref())?;
                let notification = self.arrived.ok_or(SessionError::BadRequest)?;
                let claim = self.claim(Resource::Irq { line })?;
                let cap = SlotGuard::allocate()?;
                // The serve loop releases the notification's slot: the Irq
                // object keeps what it needs of it.
                sys::create_irq(
                    slot::PLATFORM,
                    slot::OWN_PD,
                    cap.slot(),
                    u64::from(line),
                    notification,
                )?;
                Ok(Kind::Resource {
                    cap: cap.keep(),
                    claim: claim.keep(),
                })
            }
            name::IO_MEM => {
                needs(RESOURCE_SESSION_RAM)?;
                let IoMemArgs { phys, size } = decode(args)?;
                refuse_reserved(
                    &Claim::IoMem { base: phys, size },
                    label,
                    self.platform_driver.as_deref(),
                )?;
                let claim = self.claim(Resource::IoMem { phys, size })?;
                let cap = SlotGuard::allocate()?;
                sys::create_device_dataspace(slot::PLATFORM, slot::OWN_PD, cap.slot(), phys, size)?;
                Ok(Kind::Resource {
                    cap: cap.keep(),
                    claim: claim.keep(),
                })
            }
            _ => Err(SessionError::Denied),
        }
    }

    fn handle(&mut self, session: &mut Entry<Kind>, call: &mut Call<'_>) -> Reply {
        match session.state {
            Kind::Log => Reply::Simple(match call.request::<LogRequest<'_>>() {
                Ok(LogRequest::Write { text }) => {
                    print_labelled(&session.label, text);
                    SimpleReply::Done
                }
                Err(error) => SimpleReply::Error(error),
            }),
            Kind::Rom {
                read_only, size, ..
            } => Reply::Rom(match call.request::<RomRequest>() {
                Ok(RomRequest::Dataspace) => {
                    call.reply_cap(read_only);
                    RomReply::Dataspace { size }
                }
                Err(error) => RomReply::Error(error),
            }),
            Kind::Resource { .. } => Reply::Simple(SimpleReply::Error(SessionError::BadRequest)),
        }
    }

    fn error(error: SessionError) -> Reply {
        Reply::Simple(SimpleReply::Error(error))
    }

    fn session_cap(&self, session: &Entry<Kind>) -> Option<CapSlot> {
        match session.state {
            Kind::Resource { cap, .. } => Some(cap),
            _ => None,
        }
    }

    fn close(&mut self, session: Entry<Kind>) {
        match session.state {
            Kind::Log => {}
            Kind::Rom {
                dataspace,
                read_only,
                ..
            } => {
                drop(SlotGuard::adopt(dataspace).destroying());
                drop(SlotGuard::adopt(read_only));
            }
            Kind::Resource { cap, claim } => {
                // Destroying the object revokes every copy the client holds.
                drop(SlotGuard::adopt(cap).destroying());
                self.claims.release(claim);
            }
        }
    }
}

/// A claim on a resource, released on drop unless kept (a session whose
/// object cannot be made holds nothing).
struct ClaimGuard<'a> {
    claims: &'a mut Claims,
    id: Option<u32>,
}

impl ClaimGuard<'_> {
    fn keep(mut self) -> u32 {
        self.id.take().unwrap_or(0)
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.claims.release(id);
        }
    }
}

impl Sessions {
    fn claim(&mut self, resource: Resource) -> Result<ClaimGuard<'_>, SessionError> {
        let id = self.next_claim;
        self.next_claim = self.next_claim.wrapping_add(1).max(1);
        if self.claims.claim(resource, id) {
            Ok(ClaimGuard {
                claims: &mut self.claims,
                id: Some(id),
            })
        } else {
            Err(SessionError::AlreadyClaimed)
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

/// Copies bytes into a fresh dataspace paid by core (from the session's RAM).
fn copy_to_dataspace(bytes: &[u8]) -> Result<CapSlot, SessionError> {
    arbor::vspace::dataspace_with(bytes).map_err(SessionError::from)
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
