//! init: reads its config, starts its children, and answers their session
//! requests by their routes — the same `route_session` that `cargo arbor
//! check` uses. Quota travels with every session: init moves the donated
//! RAM and capability quota from the client's Pd to the provider's (or its
//! own, when it forwards the request to its parent) and back when the
//! session closes.
//!
//! init never calls a child and never waits for one (the protocol is in
//! `arbor_sessions::parent`): a session a child server must create becomes
//! a work item (`pending`) the server fetches and delivers; a server that
//! does not deliver within `DEADLINE_MS` is reported and its client told.
//! Every capability a child makes init hold (an announcement, a session)
//! is paid from that child's capability quota, and a failed receive or
//! slot allocation refuses one request and never ends the serve loop.
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
//! child's requests, work items), `export` (a nested init serving its
//! children's services upward), `config_rom` (the config ROMs init serves
//! itself, on the server framework's root mode), `state_report` (the
//! `InitState` report of its children, served itself to children routed
//! `to: Init`), and the host-tested
//! logic: `ledger` (who holds every session's quota; every quota move init
//! makes goes through it and a refused one is logged), `badge` (who sent a
//! message), `pending` (work items), `hardware` (what a child may claim)
//! and `policy` (restart decisions).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod badge;
mod children;
mod config_rom;
mod export;
mod hardware;
mod ledger;
mod pending;
mod policy;
mod sessions;
mod state_report;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use arbor::abi::{self, CapSlot, FaultKind, ObjectKind, Rights, info, slot};
use arbor::guard::SlotGuard;
use arbor::{loader, slots, sys};
use arbor_config::label::Printable;
use arbor_config::{InitConfig, RouteDecision, route_session};
use arbor_sessions::client::{self, Endpoint, Incoming, Log, Rom, Session};
use arbor_sessions::parent::{
    DEADLINE_MS, Delivery, PARENT_SESSION_CAPS, ParentReply, ParentRequest, SessionCall, Work,
};
use arbor_sessions::services::name;
use arbor_sessions::table::Quota;
use arbor_sessions::{Interface, SessionError, decode};
use badge::Caller;
use ledger::{Account, Ledger, Purpose, Server};
use pending::{ItemKind, Origin, WorkItem, WorkQueue};
use policy::AfterFault;

arbor::entry!(run);

/// Refusals of one child's requests logged per run (the rest are counted).
const LOGGED_REFUSALS: u32 = 4;
/// Priority of every child.
const CHILD_PRIORITY: u8 = 8;

/// Where a child's session was opened.
enum Via {
    /// Forwarded to init's parent.
    Parent(ParentLink),
    /// Created by a sibling that announced the service.
    Child {
        provider: usize,
        state: ChildSession,
    },
    /// The child's config ROM, served by init (`config_roms`) under `badge`.
    Config { badge: u64 },
    /// The InitState report, served by init (`state_reports`) under `badge`.
    State { badge: u64 },
}

/// A session init asked its own parent for.
enum ParentLink {
    /// Open there.
    Open(Session),
    /// Pending there under this id.
    Pending(u32),
}

/// A session a sibling serves.
enum ChildSession {
    /// The create is queued or fetched.
    Pending,
    /// Created; its calls carry `badge` at the provider.
    Open { badge: u64 },
    /// The create failed (its quota is back with the client already).
    Failed(SessionError),
}

struct SessionRecord {
    id: u32,
    client: usize,
    via: Via,
    /// The capability init holds for the client (None while pending).
    cap: Option<CapSlot>,
    /// What the client donated for it, upgrades included.
    quota: Quota,
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
    /// Services it announced, with the signal capability init signals when
    /// work for it is waiting (each paid by one cap of the child's quota).
    signals: Vec<(String, CapSlot)>,
    restarts: u32,
    status: Status,
    /// Refusals of this child's requests so far (this run): the first few
    /// are logged, the rest counted, so a child cannot flood the log.
    refusals: u32,
    /// When it was last started (init's clock, ms), for its uptime.
    started_ms: u64,
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
    /// Work queued for the child servers.
    work: WorkQueue,
    /// Every quota move init makes, and who holds what.
    ledger: Ledger,
    /// The children's config ROMs, served by init itself.
    config_roms: arbor_sessions::server::Root<config_rom::ConfigRoms>,
    /// The InitState report, served by init itself.
    state_reports: arbor_sessions::server::Root<state_report::StateReports>,
    /// Grows with every start, stop and announcement: the report's version.
    state_version: u64,
    /// When init started (its clock, ms), for its uptime.
    started_ms: u64,
    /// TSC ticks per millisecond, for deadlines.
    tsc_per_ms: u64,
    /// A nested init's notification, bound to its thread: its parent
    /// signals it when work for an exported service is waiting.
    parent_signals: Option<CapSlot>,
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
        work: WorkQueue::default(),
        ledger: Ledger::default(),
        config_roms: config_rom::server(endpoint),
        state_reports: state_report::server(endpoint),
        state_version: 0,
        started_ms: 0,
        tsc_per_ms: sys::info(info::TSC_PER_MS, 0).map_or(1, |(tsc, _)| tsc.max(1)),
        parent_signals: None,
    };
    init.started_ms = init.now_ms();
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
            signals: Vec::new(),
            refusals: 0,
            restarts: 0,
            status: Status::Held,
            started_ms: 0,
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

impl Init {
    fn say(&self, text: &str) {
        let _ = self.log.write(text);
    }

    /// Logs a refusal of child `index`'s request: the first
    /// [`LOGGED_REFUSALS`] of each run, then only their number at tear-down.
    fn refused(&mut self, index: usize, text: &str) {
        let Some(child) = self.children.get_mut(index) else {
            return;
        };
        child.refusals = child.refusals.saturating_add(1);
        let count = child.refusals;
        if count <= LOGGED_REFUSALS {
            self.say(text);
        }
        if count == LOGGED_REFUSALS {
            let name = self.child_name(index).to_string();
            self.say(&format!("{name}: further refusals are counted, not logged"));
        }
    }

    /// Milliseconds on init's clock (for deadlines).
    fn now_ms(&self) -> u64 {
        arbor_tsc() / self.tsc_per_ms
    }

    /// Answers requests for good. A failed receive, or no slot for the next
    /// capability, refuses one request and is logged; the loop goes on.
    fn serve(&mut self) {
        let mut server = Endpoint::new(self.endpoint);
        let mut receive = new_slot().ok();
        loop {
            let received =
                server.next_parent_request(&mut receive, |line| self.say(&format!("{line}")));
            self.check_deadlines();
            let Some((incoming, arrived)) = received else {
                continue;
            };
            let mut kept = false;
            match badge::decode(incoming.badge.0, incoming.label, self.children.len()) {
                Caller::Notification => {
                    if incoming.words[0] & arbor_sessions::server::PARENT_WORK != 0 {
                        self.fetch_parent_work();
                    }
                }
                Caller::Fault(index) => self.child_faulted(index, &incoming),
                Caller::Local(id) => self.local_request(badge::local(id), &incoming, &mut server),
                Caller::Child(index) => {
                    kept = self.parent_request(index, &incoming, arrived, &mut server);
                }
                Caller::Unknown(_) => {
                    server.set_reply(&ParentReply::Error(SessionError::BadRequest), None)
                }
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
            ParentRequest::Session(call) => {
                let (service, label, quota) = (call.service, call.label, call.quota());
                match self.open_session(index, service, label, call.args, quota, arrived) {
                    Ok((id, Some(cap))) => {
                        server.set_reply(&ParentReply::Session { session: id }, Some(cap))
                    }
                    Ok((id, None)) => server.set_reply(&ParentReply::Pending { session: id }, None),
                    Err(error) => {
                        // A provider that has not announced yet, or too little
                        // quota, is routine: the client asks again.
                        if !matches!(
                            error,
                            SessionError::Unavailable
                                | SessionError::InsufficientQuota { .. }
                                | SessionError::InsufficientCaps { .. }
                        ) {
                            self.refused(
                                index,
                                &format!(
                                    "{name}'s request for {} (label \"{}\") refused: {error}",
                                    Printable(service),
                                    Printable(label)
                                ),
                            );
                        }
                        server.set_reply(&ParentReply::Error(error), None);
                    }
                }
                false
            }
            ParentRequest::SessionStatus { session } => {
                match self.session_status(index, session) {
                    Ok((id, Some(cap))) => {
                        server.set_reply(&ParentReply::Session { session: id }, Some(cap))
                    }
                    Ok((id, None)) => server.set_reply(&ParentReply::Pending { session: id }, None),
                    Err(error) => server.set_reply(&ParentReply::Error(error), None),
                }
                false
            }
            ParentRequest::Upgrade { session, ram, caps } => {
                let reply = match self.upgrade(index, session, Quota { ram, caps }) {
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
            ParentRequest::Announce { service } => {
                let result = self.announce(index, service, arrived);
                let kept = result.is_ok();
                server.set_reply(
                    &result.map_or_else(ParentReply::Error, |()| ParentReply::Done),
                    None,
                );
                kept
            }
            ParentRequest::NextRequest => {
                self.next_request(index, server);
                false
            }
            ParentRequest::Deliver { id, result } => match self.work.take(index, id) {
                Ok(item) => match self.complete(item, result, arrived) {
                    Ok(kept) => {
                        server.set_reply(&ParentReply::Done, None);
                        kept
                    }
                    Err(error) => {
                        server.set_reply(&ParentReply::Error(error), None);
                        false
                    }
                },
                Err(refusal) => {
                    self.refused(
                        index,
                        &format!(
                            "{name} delivered an answer to request {id}, which is not its outstanding request ({refusal:?}): refused"
                        ),
                    );
                    server.set_reply(&ParentReply::Error(SessionError::BadRequest), None);
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
