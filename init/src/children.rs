//! Starting, stopping and restarting children: loading a child from its
//! binary ROM, its fault reports and restart policy, and tearing it down
//! so that everything it held returns to init.

use super::*;

impl Init {
    /// Waits `ms` milliseconds (a timed wait on a notification nobody signals).
    /// init serves no request meanwhile; backoffs are meant to be short.
    pub(crate) fn sleep(&mut self, ms: u64) {
        if ms == 0 {
            return;
        }
        if self.sleeper.is_none()
            && let Ok(notification) = SlotGuard::allocate()
            && sys::create(
                ObjectKind::Notification,
                slot::OWN_PD,
                notification.slot(),
                0,
            )
            .is_ok()
        {
            self.sleeper = Some(notification.keep());
        }
        // A wait that ends early (or cannot start) only shortens the backoff.
        if let Some(notification) = self.sleeper
            && let Err(error) = sys::wait_timeout(notification, ms)
        {
            self.say(&format!("backoff wait failed: {error}; restarting at once"));
        }
    }

    pub(crate) fn binary(&mut self, name: &str) -> Result<&'static [u8], SessionError> {
        if let Some((_, rom)) = self.binaries.iter().find(|(n, _)| n == name) {
            return Ok(rom.bytes);
        }
        let rom = Rom::open(name)?;
        let bytes = rom.bytes;
        self.binaries.push((name.to_string(), rom));
        Ok(bytes)
    }

    pub(crate) fn start_child(&mut self, index: usize) {
        // Started or not, the report changes.
        self.state_version = self.state_version.wrapping_add(1);
        let child = self.children[index].config.clone();
        if let Err(error) = arbor_config::names::check_child(&child) {
            self.say(&format!("cannot start {}: {error}", Printable(&child.name)));
            self.children[index].status = Status::Held;
            return;
        }
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
        let badge = badge::child(index);
        // Both slots are released again if anything after them fails.
        let caps_made = (|| -> Result<(SlotGuard, SlotGuard), String> {
            let parent =
                SlotGuard::allocate().map_err(|e| format!("out of capability slots ({e})"))?;
            sys::derive(
                self.endpoint,
                parent.slot(),
                Rights::WRITE.union(Rights::GRANT),
                badge,
            )
            .map_err(|e| format!("{e}"))?;
            let fault =
                SlotGuard::allocate().map_err(|e| format!("out of capability slots ({e})"))?;
            sys::derive(
                self.endpoint,
                fault.slot(),
                Rights::WRITE,
                badge::fault(index),
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
        self.children[index].refusals = 0;
        let spec = loader::ChildSpec {
            image,
            ram,
            caps,
            priority: CHILD_PRIORITY,
            argument: 0,
            fault_endpoint: Some(fault.slot()),
            grants: &[(parent.slot(), slot::PARENT, Rights::WRITE)],
        };
        match loader::spawn(&spec) {
            Ok(running) => {
                let state = &mut self.children[index];
                state.running = Some(running);
                state.own_caps = alloc::vec![parent.keep(), fault.keep()];
                state.status = Status::Running;
                state.started_ms = arbor_tsc() / self.tsc_per_ms;
                // The loader moved the child's quota already.
                let _recorded =
                    self.ledger
                        .start(&mut ledger::AlreadyMoved, index, Quota { ram, caps });
                self.say(&format!(
                    "started {} ({}), RAM {} KiB, caps {}",
                    child.name,
                    child.binary_name(),
                    ram / 1024,
                    caps
                ));
            }
            Err(error) => {
                // The guards release both slots.
                self.say(&format!("cannot start {}: {error}", child.name));
            }
        }
    }

    pub(crate) fn child_faulted(&mut self, index: usize, incoming: &Incoming) {
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
            self.children[index].free_after_first_fault = Some(self.free_once_closes_return());
        }
        let restarts = self.children[index].restarts;
        match policy::after_fault(&self.children[index].config.restart, restarts) {
            AfterFault::Hold => {
                self.children[index].status = Status::Held;
                self.say(&format!("{name} stays stopped (restart: Never)"));
            }
            AfterFault::GiveUp { max } => {
                self.children[index].status = Status::Held;
                let (ram, caps) = self.free_once_closes_return();
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

    /// init's free RAM and caps counting what its servers still hold for
    /// children that are gone: closes are asynchronous, so right after a
    /// tear-down part of the quota may be on its way back, and a leak check
    /// must not call that lost.
    fn free_once_closes_return(&self) -> (u64, u64) {
        let (ram, caps) = own_quota();
        let owed = self.work.owed_to_init();
        (ram.saturating_add(owed.ram), caps.saturating_add(owed.caps))
    }

    /// Stops a child for good: closes the sessions it holds, fails the
    /// work waiting for it and the sessions it serves, destroys its Pd (its
    /// quota returns to init) and forgets the capabilities init made for it.
    pub(crate) fn tear_down(&mut self, index: usize) {
        self.state_version = self.state_version.wrapping_add(1);
        let held: Vec<u32> = self
            .sessions
            .iter()
            .filter(|s| s.client == index)
            .map(|s| s.id)
            .collect();
        for id in held {
            // Its own sessions: found by construction, so close cannot refuse.
            if let Err(error) = self.close(index, id) {
                self.say(&format!("closing session {id} of a stopped child: {error}"));
            }
        }
        let refusals = core::mem::take(&mut self.children[index].refusals);
        if refusals > LOGGED_REFUSALS {
            let name = self.child_name(index).to_string();
            self.say(&format!("{name}: {refusals} requests refused in all"));
        }
        // What it still waits for is refunded to init: its Pd's quota is.
        self.work.forget_client(index);
        let state = &mut self.children[index];
        for (_, signal) in state.signals.drain(..) {
            slots::release(signal);
        }
        for cap in state.own_caps.drain(..) {
            slots::release(cap);
        }
        if let Some(child) = state.running.take() {
            match child.destroy() {
                // Everything its Pd had is init's now.
                Ok(()) => self.ledger.destroyed(index),
                Err(error) => {
                    let name = self.child_name(index).to_string();
                    self.say(&format!(
                        "destroying {name}'s Pd failed: {error}; its quota stays there"
                    ));
                }
            }
        }
        // Work it had not answered fails; everything that had moved to it
        // came back to init with its Pd.
        for item in self.work.drain_provider(index) {
            self.fail(item, SessionError::Unavailable);
        }
        // Sessions it served die with it: their clients' next calls fail and
        // they may ask again once it is back. The quota they donated returned
        // to init with the Pd; hand it back to each client that still runs.
        let served: Vec<SessionRecord> = {
            let (served, kept) = core::mem::take(&mut self.sessions)
                .into_iter()
                .partition(|s| matches!(s.via, Via::Child { provider, .. } if provider == index));
            self.sessions = kept;
            served
        };
        self.export_sessions.retain(|e| e.provider != index);
        if !self.ledger.balanced() {
            let name = self.child_name(index).to_string();
            self.say(&format!(
                "BOOKS DO NOT BALANCE after {name} stopped: a session's quota is not at exactly one place"
            ));
        }
        for record in served {
            let pending = matches!(
                record.via,
                Via::Child {
                    state: ChildSession::Pending | ChildSession::Failed(_),
                    ..
                }
            );
            if pending {
                // Failed above (refunded then) or already refunded; the
                // client learns it when it asks.
                self.sessions.push(record);
                continue;
            }
            self.settle(record.id, Some(record.client), record.quota);
            if let Some(cap) = record.cap {
                slots::release(cap);
            }
        }
    }
}
