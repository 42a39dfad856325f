//! The second service init serves itself: `InitState`, the report of its
//! children (`arbor_sessions::init_state`), to each child whose routes send
//! it `to: Init`. Written against the server framework's root mode like
//! the config ROMs: the table, badges and dispatch are the framework's.
//!
//! init builds the report at most once per
//! [`init_state::SNAPSHOT_INTERVAL_MS`] whatever its readers ask, encodes it
//! once ([`StateReports::latest`]) and copies it into the asking session's
//! own buffer, paid from that session's donation. A reader's offsets and
//! lengths are checked by [`init_state::read_chunk`]; a refusal is handed
//! back to init ([`StateReports::refusal`]) to log under the reader's name.

use super::Status;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{CapSlot, info, slot};
use arbor::sys;
use arbor_sessions::SessionError;
use arbor_sessions::init_state::{
    self, InitStateReply, InitStateRequest, MAX_REPORT_BYTES, SESSION_RAM,
};
use arbor_sessions::server::{Call, Root, Service};
use arbor_sessions::table::{Entry, Quota};

/// Session ids from here on are InitState sessions; below, config ROMs.
pub(crate) const FIRST_STATE_SESSION: u32 = 1 << 31;

/// Capability quota an InitState session costs init: its session capability.
pub(crate) const STATE_SESSION_CAPS: u64 = 1;

/// One reader's session: its copy of the last snapshot it asked for.
pub(crate) struct StateSession {
    /// The snapshot; its capacity is reserved at creation (what
    /// [`SESSION_RAM`] pays for), so a snapshot never allocates.
    buffer: Vec<u8>,
    /// Whether a snapshot was taken (reads before one are refused).
    taken: bool,
}

/// init's InitState service.
#[derive(Default)]
pub(crate) struct StateReports {
    /// The version now (set by init before each call).
    pub(crate) version: u64,
    /// The last report built, encoded, and its version.
    pub(crate) latest: Vec<u8>,
    /// The version the last report was built at.
    pub(crate) latest_version: u64,
    /// When the last report was built (init's clock, ms).
    pub(crate) latest_ms: Option<u64>,
    /// Snapshots answered from the last report because it was fresh.
    pub(crate) reused: u64,
    /// What the last call was refused for, for init to log.
    pub(crate) refusal: Option<String>,
}

impl Service for StateReports {
    type Session = StateSession;
    type Reply = InitStateReply;

    fn create(
        &mut self,
        _service: &str,
        _label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<StateSession, SessionError> {
        quota.require(Quota {
            ram: SESSION_RAM,
            caps: 0,
        })?;
        let mut buffer = Vec::new();
        buffer
            .try_reserve_exact(MAX_REPORT_BYTES)
            .map_err(|_| SessionError::InsufficientQuota { needed: 4096 })?;
        Ok(StateSession {
            buffer,
            taken: false,
        })
    }

    fn handle(&mut self, session: &mut Entry<StateSession>, call: &mut Call<'_>) -> InitStateReply {
        let request = match call.request::<InitStateRequest>() {
            Ok(request) => request,
            Err(error) => {
                self.refusal = Some(String::from("request that does not decode"));
                return InitStateReply::Error(error);
            }
        };
        let state = &mut session.state;
        match request {
            InitStateRequest::Version => InitStateReply::Version {
                version: self.version,
            },
            InitStateRequest::Snapshot => {
                if self.latest.is_empty() || self.latest.len() > MAX_REPORT_BYTES {
                    return InitStateReply::Error(SessionError::Unavailable);
                }
                state.buffer.clear();
                state.buffer.extend_from_slice(&self.latest);
                state.taken = true;
                let size = state.buffer.len() as u32;
                InitStateReply::Snapshot {
                    version: self.latest_version,
                    size,
                }
            }
            InitStateRequest::Read { offset, len } => {
                match init_state::read_chunk(state.taken.then_some(&state.buffer[..]), offset, len)
                {
                    Ok(bytes) => InitStateReply::Bytes(bytes.to_vec()),
                    Err(refusal) => {
                        self.refusal = Some(format!("{refusal}"));
                        InitStateReply::Error(SessionError::BadRequest)
                    }
                }
            }
        }
    }

    fn error(error: SessionError) -> InitStateReply {
        InitStateReply::Error(error)
    }
}

impl super::Init {
    /// The report as of now.
    fn build_report(&self) -> init_state::InitReport {
        let now = self.now_ms();
        // What a Pd has allocated itself (its quota shrinks and grows with
        // the sessions it donates to and is donated for, so the quota
        // shown is the one init gave).
        let used = |pd: CapSlot, what| sys::info(what, u64::from(pd.0)).map_or(0, |(_, used)| used);
        let children = self
            .children
            .iter()
            .map(|child| {
                let quota = child.config.effective_quota(&self.config);
                let running = child.running.as_ref();
                let ram = init_state::Usage {
                    quota: quota.ram.0 / 4096 * 4096,
                    used: running.map_or(0, |r| used(r.pd, info::PD_RAM)),
                };
                let caps = init_state::Usage {
                    quota: quota.caps.0,
                    used: running.map_or(0, |r| used(r.pd, info::PD_CAPS)),
                };
                let announced = |service: &String| child.signals.iter().any(|(s, _)| s == service);
                let state = match child.status {
                    Status::Running if child.config.provides.iter().all(announced) => {
                        init_state::ChildState::Running
                    }
                    Status::Running => init_state::ChildState::Starting,
                    Status::Exited(code) => init_state::ChildState::Exited { code },
                    Status::Held => init_state::ChildState::Failed,
                };
                init_state::ChildReport {
                    name: child.config.name.clone(),
                    binary: String::from(child.config.binary_name()),
                    state,
                    restarts: child.restarts,
                    ram,
                    caps,
                    uptime_ms: running.map_or(0, |_| now.saturating_sub(child.started_ms)),
                    services: child.signals.iter().map(|(s, _)| s.clone()).collect(),
                }
                .bounded()
            })
            .collect();
        let own = |what| {
            sys::info(what, u64::from(slot::OWN_PD.0))
                .map_or(init_state::Usage::default(), |(quota, used)| {
                    init_state::Usage { quota, used }
                })
        };
        let (ram, caps) = (own(info::PD_RAM), own(info::PD_CAPS));
        init_state::InitReport {
            version: self.state_version,
            uptime_ms: now.saturating_sub(self.started_ms),
            ram,
            caps,
            children,
            omitted: 0,
        }
    }

    /// A call on InitState session `badge`: a snapshot is built first if
    /// the last is stale; a refusal is logged under the reader's name
    /// (rate-limited like every refusal of a child's requests).
    pub(crate) fn state_request(
        &mut self,
        badge: u64,
        incoming: &arbor_sessions::client::Incoming,
        server: &mut arbor_sessions::client::Endpoint,
    ) {
        let now = self.now_ms();
        let snapshot = matches!(
            arbor_sessions::decode::<InitStateRequest>(incoming.bytes()),
            Ok(InitStateRequest::Snapshot)
        );
        if snapshot {
            if init_state::fresh(self.state_reports.service.latest_ms, now) {
                let service = &mut self.state_reports.service;
                service.reused = service.reused.saturating_add(1);
                if service.reused.is_power_of_two() && service.reused >= 1024 {
                    let reused = service.reused;
                    self.say(&format!(
                        "{reused} InitState snapshots asked for within {} ms of the last were answered with the last",
                        init_state::SNAPSHOT_INTERVAL_MS
                    ));
                }
            } else {
                let mut report = self.build_report();
                let service = &mut self.state_reports.service;
                let mut latest = core::mem::take(&mut service.latest);
                if let Err(error) = init_state::encode_report(&mut report, &mut latest) {
                    latest.clear();
                    self.say(&format!("cannot encode the state report: {error}"));
                }
                let service = &mut self.state_reports.service;
                service.latest = latest;
                service.latest_version = report.version;
                service.latest_ms = Some(now);
            }
        }
        self.state_reports.service.version = self.state_version;
        let mut no_receive = CapSlot(0);
        let (reply, cap) = self.state_reports.call(badge, incoming, &mut no_receive);
        if let Some(refusal) = self.state_reports.service.refusal.take() {
            let reader = self
                .sessions
                .iter()
                .find(|s| matches!(s.via, super::Via::State { badge: b } if b == badge))
                .map(|s| s.client);
            if let Some(index) = reader {
                let name = String::from(self.child_name(index));
                self.refused(index, &format!("{name}'s InitState {refusal}: refused"));
            }
        }
        server.set_reply(&reply, cap);
    }
}

/// init's InitState server on `endpoint`, badges after the config ROMs'.
pub(crate) fn server(endpoint: CapSlot) -> Root<StateReports> {
    Root::with_first_badge(
        endpoint,
        StateReports::default(),
        super::badge::local(FIRST_STATE_SESSION),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_donation_is_refused_before_anything_is_made() {
        let mut reports = StateReports::default();
        assert_eq!(
            reports
                .create(
                    "InitState",
                    "reader",
                    &[],
                    Quota {
                        ram: SESSION_RAM - 4096,
                        caps: 1
                    }
                )
                .err(),
            Some(SessionError::InsufficientQuota { needed: 4096 })
        );
        assert!(
            reports
                .create(
                    "InitState",
                    "reader",
                    &[],
                    Quota {
                        ram: SESSION_RAM,
                        caps: 1
                    }
                )
                .is_ok()
        );
    }
}
