//! Session requests of the children: routing them, moving the donated
//! quota along, serving each child's `config` ROM, and the work items of
//! child servers (queued, fetched, delivered or expired). init never calls
//! a child: it signals a server that work is waiting and answers the
//! server's `NextRequest` and `Deliver` at once.

use super::*;

/// Capability quota a config ROM session costs init: the dataspace and
/// the session capability.
const CONFIG_SESSION_CAPS: u64 = 2;

impl Init {
    pub(crate) fn child_pd(&self, index: usize) -> Result<CapSlot, SessionError> {
        self.children
            .get(index)
            .and_then(|child| child.running.as_ref())
            .map(|c| c.pd)
            .ok_or(SessionError::Unavailable)
    }

    /// A child's display name.
    pub(crate) fn child_name(&self, index: usize) -> &str {
        self.children
            .get(index)
            .map_or("?", |child| child.config.name.as_str())
    }

    /// Moves `quota` from `from` to `to` through the ledger; a refusal is
    /// in the books and logged (a refund init cannot make is never silent).
    pub(crate) fn move_quota(
        &mut self,
        from: Account,
        to: Account,
        quota: Quota,
        purpose: Purpose,
    ) -> Result<(), abi::Error> {
        let mut kernel = Pds {
            children: &self.children,
        };
        let result = self
            .ledger
            .transfer(&mut kernel, 0, from, to, quota, purpose);
        self.report_refusals();
        result.map_err(|refusal| refusal.error)
    }

    /// Logs the moves the kernel refused, naming who, how much and why. A
    /// refused charge is not logged: its client is told in the reply.
    pub(crate) fn report_refusals(&mut self) {
        for refusal in self.ledger.take_refusals() {
            if refusal.purpose == Purpose::Charge {
                continue;
            }
            let (from, to) = (
                self.account_name(refusal.from),
                self.account_name(refusal.to),
            );
            self.say(&format!(
                "could not move {} bytes and {} caps from {from} to {to} ({}): {}",
                refusal.quota.ram,
                refusal.quota.caps,
                match refusal.purpose {
                    Purpose::Charge => "a charge",
                    Purpose::PassOn => "passing a donation on to a server",
                    Purpose::TakeBack => "taking a donation back from a server",
                    Purpose::Refund => "a refund",
                    Purpose::Start => "a child's start",
                },
                refusal.error
            ));
        }
    }

    fn account_name(&self, account: Account) -> String {
        match account {
            Account::Init => "init".to_string(),
            Account::Parent => "init's parent".to_string(),
            Account::Child(index) => self.child_name(index).to_string(),
        }
    }

    /// Opens session `id`'s books: child `index` pays `quota` for a
    /// session `server` serves.
    fn open_books(
        &mut self,
        index: usize,
        id: u32,
        server: Server,
        quota: Quota,
    ) -> Result<(), SessionError> {
        self.child_pd(index)?;
        let mut kernel = Pds {
            children: &self.children,
        };
        let opened = self.ledger.open(&mut kernel, id, index, server, quota);
        self.report_refusals();
        opened.map_err(|_| SessionError::ClientQuotaExceeded)
    }

    /// Closes session `id`'s books: its donation comes back from its server
    /// and goes to its client, as the ledger decides; refusals are logged.
    fn close_books(&mut self, id: u32) {
        let mut kernel = Pds {
            children: &self.children,
        };
        let _logged_below = self.ledger.close(&mut kernel, id);
        self.report_refusals();
    }

    /// Takes `quota` from child `index` for something it asks init to hold.
    fn charge(&mut self, index: usize, quota: Quota) -> Result<(), SessionError> {
        self.child_pd(index)?;
        self.move_quota(Account::Child(index), Account::Init, quota, Purpose::Charge)
            .map_err(|_| SessionError::ClientQuotaExceeded)
    }

    /// Gives `quota` that init holds back to child `client` (if it still
    /// runs; otherwise it stays with init, where its Pd's quota went).
    pub(crate) fn refund(&mut self, client: Option<usize>, quota: Quota) {
        if let Some(client) = client
            && self.child_pd(client).is_ok()
        {
            // A refusal is logged by move_quota; the quota stays with init.
            let _logged = self.move_quota(
                Account::Init,
                Account::Child(client),
                quota,
                Purpose::Refund,
            );
        }
    }

    pub(crate) fn open_session(
        &mut self,
        index: usize,
        service: &str,
        label: &str,
        args: &[u8],
        quota: Quota,
        arrived: Option<CapSlot>,
    ) -> Result<(u32, Option<CapSlot>), SessionError> {
        if !quota.ram.is_multiple_of(4096) {
            return Err(SessionError::BadRequest);
        }
        quota.require(Quota {
            ram: 0,
            caps: PARENT_SESSION_CAPS,
        })?;
        self.child_pd(index)?;
        let id = self.next_id;
        if service == name::ROM && label == "config" {
            quota.require(Quota {
                ram: 0,
                caps: CONFIG_SESSION_CAPS,
            })?;
            self.open_books(index, id, Server::Init, quota)?;
            return match self.config_rom(index, id, quota) {
                Ok(cap) => {
                    self.next_id += 1;
                    Ok((id, Some(cap)))
                }
                Err(error) => {
                    self.close_books(id);
                    Err(error)
                }
            };
        }
        let child_name = self.children[index].config.name.clone();
        // Hardware is declared, not just routed: judged before any route.
        if let Err(refusal) = hardware::admit(&self.children[index].config.hardware, service, args)
        {
            self.say(&format!("denied {child_name}'s {refusal}"));
            return Err(SessionError::Denied);
        }
        match route_session(&self.config, &child_name, service, label) {
            RouteDecision::Denied { reason, .. } => {
                self.say(&format!(
                    "denied {child_name}'s {} session (label \"{}\"): {reason}",
                    Printable(service),
                    Printable(label)
                ));
                Err(SessionError::Denied)
            }
            RouteDecision::Init { .. } => {
                quota.require(Quota {
                    ram: 0,
                    caps: PARENT_SESSION_CAPS + state_report::STATE_SESSION_CAPS,
                })?;
                self.open_books(index, id, Server::Init, quota)?;
                match self.state_reports.open(service, label, args, quota) {
                    Ok((badge, cap)) => {
                        self.next_id += 1;
                        self.sessions.push(SessionRecord {
                            id,
                            client: index,
                            via: Via::State { badge },
                            cap: Some(cap),
                            quota,
                        });
                        self.say(&format!("{child_name} reads init's state report"));
                        Ok((id, Some(cap)))
                    }
                    Err(error) => {
                        self.close_books(id);
                        Err(error)
                    }
                }
            }
            RouteDecision::Parent { label, .. } => {
                self.open_books(index, id, Server::Parent, quota)?;
                let forwarded = client::open_session_raw(
                    slot::PARENT,
                    service,
                    &label,
                    args,
                    quota.ram,
                    quota.caps - PARENT_SESSION_CAPS,
                    arrived,
                );
                let (link, cap) = match forwarded {
                    Ok(client::Opened::Open(session)) => {
                        (ParentLink::Open(session), Some(session.cap))
                    }
                    Ok(client::Opened::Pending(outer)) => (ParentLink::Pending(outer), None),
                    Err(error) => {
                        // The parent took nothing, or gave it back.
                        self.close_books(id);
                        return Err(error);
                    }
                };
                // The parent took all but the capabilities init holds for it.
                let mut kernel = Pds {
                    children: &self.children,
                };
                let _counted = self.ledger.pass_on(&mut kernel, id);
                self.next_id += 1;
                self.sessions.push(SessionRecord {
                    id,
                    client: index,
                    via: Via::Parent(link),
                    cap,
                    quota,
                });
                Ok((id, cap))
            }
            RouteDecision::Child {
                provider, label, ..
            } => {
                let provider = self
                    .children
                    .iter()
                    .position(|c| c.config.name == provider)
                    .ok_or(SessionError::Unavailable)?;
                self.child_pd(provider)?;
                if !self.children[provider]
                    .signals
                    .iter()
                    .any(|(s, _)| s == service)
                {
                    return Err(SessionError::Unavailable);
                }
                self.open_books(index, id, Server::Child(provider), quota)?;
                let kind = ItemKind::Create {
                    service: service.to_string(),
                    label,
                    args: args.to_vec(),
                };
                let origin = Origin::Child {
                    client: Some(index),
                    session: id,
                };
                let now = self.now_ms();
                self.work
                    .push(provider, kind, origin, quota, now, DEADLINE_MS);
                self.next_id += 1;
                self.sessions.push(SessionRecord {
                    id,
                    client: index,
                    via: Via::Child {
                        provider,
                        state: ChildSession::Pending,
                    },
                    cap: None,
                    quota,
                });
                self.signal_provider(provider);
                Ok((id, None))
            }
        }
    }

    /// Signals child `provider` that work is waiting (on the signal
    /// capability of its first announcement: one notification per server).
    pub(crate) fn signal_provider(&self, provider: usize) {
        if let Some((_, signal)) = self.children[provider].signals.first() {
            // A server that destroyed its notification only misses the news;
            // its items expire.
            let _ = sys::signal(*signal);
        }
    }

    /// Where child `index`'s session `id` stands.
    pub(crate) fn session_status(
        &mut self,
        index: usize,
        id: u32,
    ) -> Result<(u32, Option<CapSlot>), SessionError> {
        let position = self
            .sessions
            .iter()
            .position(|s| s.id == id && s.client == index)
            .ok_or(SessionError::NoSuchSession)?;
        let record = &mut self.sessions[position];
        match &record.via {
            Via::Parent(ParentLink::Pending(outer)) => {
                match client::session_status(slot::PARENT, *outer) {
                    Ok(client::Opened::Open(session)) => {
                        record.via = Via::Parent(ParentLink::Open(session));
                        record.cap = Some(session.cap);
                        Ok((id, Some(session.cap)))
                    }
                    Ok(client::Opened::Pending(again)) => {
                        record.via = Via::Parent(ParentLink::Pending(again));
                        Ok((id, None))
                    }
                    Err(error) => {
                        let record = self.sessions.swap_remove(position);
                        self.close_books(record.id);
                        Err(error)
                    }
                }
            }
            Via::Child {
                state: ChildSession::Pending,
                ..
            } => Ok((id, None)),
            Via::Child {
                state: ChildSession::Failed(error),
                ..
            } => {
                let error = *error;
                let record = self.sessions.swap_remove(position);
                self.settle(record.id, Some(index), record.quota);
                Err(error)
            }
            _ => Ok((id, record.cap)),
        }
    }

    /// Serves a child's `config` ROM: its config text in a dataspace paid from `quota`.
    pub(crate) fn config_rom(
        &mut self,
        index: usize,
        id: u32,
        quota: Quota,
    ) -> Result<CapSlot, SessionError> {
        self.config_roms.service.text = self.children[index]
            .config
            .config
            .as_ref()
            .map(|c| c.as_text().to_string())
            .unwrap_or_default();
        let (badge, cap) = self.config_roms.open(name::ROM, "config", &[], quota)?;
        self.sessions.push(SessionRecord {
            id,
            client: index,
            via: Via::Config { badge },
            cap: Some(cap),
            quota,
        });
        Ok(cap)
    }

    /// A call on a config-ROM or InitState session (`badge`), answered
    /// by the framework.
    pub(crate) fn local_request(&mut self, badge: u64, incoming: &Incoming, server: &mut Endpoint) {
        // Neither service takes capabilities.
        let mut no_receive = CapSlot(0);
        if badge >= badge::local(state_report::FIRST_STATE_SESSION) {
            return self.state_request(badge, incoming, server);
        }
        let (reply, cap) = self.config_roms.call(badge, incoming, &mut no_receive);
        server.set_reply(&reply, cap);
    }

    /// More quota for child `index`'s session `id`: forwarded to the parent
    /// at once, or queued for the serving sibling (answered at once).
    pub(crate) fn upgrade(
        &mut self,
        index: usize,
        id: u32,
        more: Quota,
    ) -> Result<(), SessionError> {
        if !more.ram.is_multiple_of(4096) {
            return Err(SessionError::BadRequest);
        }
        let position = self
            .sessions
            .iter()
            .position(|s| s.id == id && s.client == index)
            .ok_or(SessionError::NoSuchSession)?;
        let target = match self.sessions[position].via {
            Via::Parent(ParentLink::Open(session)) => Ok(session.id),
            Via::Child {
                provider,
                state: ChildSession::Open { badge },
            } => Err((provider, badge)),
            _ => return Err(SessionError::BadRequest),
        };
        match target {
            Ok(outer) => {
                let mut kernel = Pds {
                    children: &self.children,
                };
                let charged = self.ledger.upgrade(&mut kernel, id, more);
                self.report_refusals();
                if let Err(refusal) = charged {
                    return Err(match refusal.purpose {
                        Purpose::Charge => SessionError::ClientQuotaExceeded,
                        _ => SessionError::from(refusal.error),
                    });
                }
                if let Err(error) =
                    client::upgrade_session_raw(slot::PARENT, outer, more.ram, more.caps)
                {
                    let mut kernel = Pds {
                        children: &self.children,
                    };
                    self.ledger.give_back(&mut kernel, id, more, more);
                    self.report_refusals();
                    return Err(error);
                }
                let record = &mut self.sessions[position];
                record.quota = record.quota.checked_add(more).unwrap_or(record.quota);
            }
            Err((provider, badge)) => {
                let mut kernel = Pds {
                    children: &self.children,
                };
                let charged = self.ledger.charge_more(&mut kernel, id, more);
                self.report_refusals();
                charged.map_err(|_| SessionError::ClientQuotaExceeded)?;
                let origin = Origin::Child {
                    client: Some(index),
                    session: id,
                };
                let now = self.now_ms();
                self.work.push(
                    provider,
                    ItemKind::Upgrade { badge },
                    origin,
                    more,
                    now,
                    DEADLINE_MS,
                );
                self.signal_provider(provider);
            }
        }
        Ok(())
    }

    /// Closes session `id` of child `index`, answered at once. Its quota
    /// goes back to the child (or to init, when the child is gone) now, or
    /// once the serving sibling has acknowledged the close.
    pub(crate) fn close(&mut self, index: usize, id: u32) -> Result<(), SessionError> {
        let position = self
            .sessions
            .iter()
            .position(|s| s.id == id && s.client == index)
            .ok_or(SessionError::NoSuchSession)?;
        let record = self.sessions.swap_remove(position);
        let client = Some(index);
        match record.via {
            Via::Parent(link) => {
                let outer = match link {
                    ParentLink::Open(session) => session.id,
                    ParentLink::Pending(outer) => outer,
                };
                if let Err(error) = client::close_session_raw(slot::PARENT, outer) {
                    self.say(&format!("closing session {outer} at the parent: {error}"));
                }
                if let Some(cap) = record.cap {
                    slots::release(cap);
                }
                self.close_books(record.id);
            }
            Via::Child { provider, state } => match state {
                ChildSession::Open { badge } => {
                    if let Some(cap) = record.cap {
                        slots::release(cap);
                    }
                    self.close_at_provider(provider, badge, client, id, record.quota);
                }
                // The create is still out: its completion finds no record
                // and closes what it created (refunds go to the origin).
                ChildSession::Pending => {}
                // Its donation came back at the failure, but for what the
                // record itself cost.
                ChildSession::Failed(_) => self.settle(record.id, client, record.quota),
            },
            Via::State { badge } => {
                if let Err(error) = self.state_reports.close(badge) {
                    self.say(&format!("closing InitState session {badge:#x}: {error}"));
                }
                self.close_books(record.id);
            }
            Via::Config { badge } => {
                // The framework destroys the session capability (revoking
                // the client's copy) and the dataspace.
                if let Err(error) = self.config_roms.close(badge) {
                    self.say(&format!("closing config ROM session {badge:#x}: {error}"));
                }
                self.close_books(record.id);
            }
        }
        Ok(())
    }

    /// Queues the close of session `badge` at `provider`, whose quota
    /// (`quota` donated, less what init kept for the capability it just
    /// released) goes back to `client` when the provider acknowledges.
    pub(crate) fn close_at_provider(
        &mut self,
        provider: usize,
        badge: u64,
        client: Option<usize>,
        session: u32,
        quota: Quota,
    ) {
        let kept = Quota {
            ram: 0,
            caps: PARENT_SESSION_CAPS.min(quota.caps),
        };
        if self.ledger.has(session) {
            let mut kernel = Pds {
                children: &self.children,
            };
            self.ledger
                .give_back(&mut kernel, session, Quota::default(), kept);
            self.report_refusals();
        } else {
            self.refund(client, kept);
        }
        let at_provider = Quota {
            ram: quota.ram,
            caps: quota.caps - kept.caps,
        };
        let now = self.now_ms();
        self.work.push(
            provider,
            ItemKind::Close { badge },
            Origin::Child { client, session },
            at_provider,
            now,
            DEADLINE_MS,
        );
        self.signal_provider(provider);
    }

    /// Child `index` offers `service` with the signal capability `signal`,
    /// which costs it one capability of its own quota.
    pub(crate) fn announce(
        &mut self,
        index: usize,
        service: &str,
        signal: Option<CapSlot>,
    ) -> Result<(), SessionError> {
        let name = self.children[index].config.name.clone();
        let Some(signal) = signal else {
            self.refused(
                index,
                &format!("{name} announced {service} without a signal capability: refused"),
            );
            return Err(SessionError::BadRequest);
        };
        if !self.children[index]
            .config
            .provides
            .iter()
            .any(|p| p == service)
        {
            self.refused(
                index,
                &format!("{name} announced {service}, which its config does not let it provide"),
            );
            return Err(SessionError::Denied);
        }
        if self.children[index]
            .signals
            .iter()
            .any(|(s, _)| s == service)
        {
            self.refused(
                index,
                &format!("{name} announced {service} again: refused, it is announced"),
            );
            return Err(SessionError::BadRequest);
        }
        if let Err(error) = self.charge(
            index,
            Quota {
                ram: 0,
                caps: PARENT_SESSION_CAPS,
            },
        ) {
            self.refused(
                index,
                &format!(
                "{name} announced {service}: refused, it cannot pay the capability init holds ({error})"
            ),
            );
            return Err(error);
        }
        self.say(&format!("{name} announced {service}"));
        self.children[index]
            .signals
            .push((service.to_string(), signal));
        self.state_version = self.state_version.wrapping_add(1);
        self.export(service, index);
        Ok(())
    }

    /// Child `index` fetches its oldest work item; a create's or upgrade's
    /// quota moves to it now.
    pub(crate) fn next_request(&mut self, index: usize, server: &mut Endpoint) {
        if self.child_pd(index).is_err() {
            return server.set_reply(&ParentReply::Error(SessionError::Unavailable), None);
        }
        loop {
            let Some(item) = self.work.next_for(index).cloned() else {
                return server.set_reply(&ParentReply::NoWork, None);
            };
            let moves = item.moves_on_fetch();
            let passed = match item.origin {
                Origin::Child { session, .. } if self.ledger.has(session) => {
                    let mut kernel = Pds {
                        children: &self.children,
                    };
                    let passed = self.ledger.pass_on_part(&mut kernel, session, moves);
                    self.report_refusals();
                    passed.map_err(|refusal| refusal.error)
                }
                _ => self.move_quota(Account::Init, Account::Child(index), moves, Purpose::PassOn),
            };
            if let Err(error) = passed {
                // init cannot pay what it was given: the item fails (nothing moved).
                if let Some(item) = self.work.withdraw(item.id) {
                    self.fail(item, SessionError::from(error));
                }
                continue;
            }
            let work = match &item.kind {
                ItemKind::Create {
                    service,
                    label,
                    args,
                } => Work::Create {
                    id: item.id,
                    call: SessionCall {
                        service,
                        label,
                        args,
                        ram: moves.ram,
                        caps: moves.caps,
                    },
                },
                ItemKind::Upgrade { badge } => Work::Upgrade {
                    id: item.id,
                    badge: *badge,
                    ram: moves.ram,
                    caps: moves.caps,
                },
                ItemKind::Close { badge } => Work::Close {
                    id: item.id,
                    badge: *badge,
                },
            };
            return server.set_reply(&ParentReply::Work(work), None);
        }
    }

    /// A server delivered `result` for `item` (with `cap` for a new session);
    /// true if init kept `cap`.
    pub(crate) fn complete(
        &mut self,
        item: WorkItem,
        result: Delivery,
        cap: Option<CapSlot>,
    ) -> Result<bool, SessionError> {
        match (&item.kind, result) {
            (ItemKind::Create { .. }, Delivery::Created { badge }) => {
                // A session is an endpoint capability; anything else a server
                // sends (a notification, its own Pd) is not passed on.
                let endpoint = cap.filter(|cap| {
                    sys::info(info::CAP_KIND, u64::from(cap.0))
                        .is_ok_and(|(kind, _)| kind == ObjectKind::Endpoint as u64)
                });
                let Some(cap) = endpoint else {
                    let provider = self.child_name(item.provider).to_string();
                    self.refused(
                        item.provider,
                        &format!(
                            "{provider} answered request {} without a session capability: refused",
                            item.id
                        ),
                    );
                    self.fail(item, SessionError::BadRequest);
                    return Err(SessionError::BadRequest);
                };
                Ok(self.created(item, badge, cap))
            }
            (ItemKind::Create { .. }, Delivery::Refused(error)) => {
                self.fail(item, error);
                Ok(false)
            }
            (ItemKind::Create { .. }, Delivery::Done) => {
                self.fail(item, SessionError::BadRequest);
                Ok(false)
            }
            (ItemKind::Upgrade { .. }, Delivery::Done) => {
                if let Origin::Child {
                    client: Some(client),
                    session,
                } = item.origin
                    && let Some(record) = self
                        .sessions
                        .iter_mut()
                        .find(|s| s.id == session && s.client == client)
                {
                    record.quota = record.quota.checked_add(item.quota).unwrap_or(record.quota);
                }
                if let (Origin::Parent { id }, ItemKind::Upgrade { badge }) =
                    (item.origin, &item.kind)
                {
                    self.upgraded_for_parent(item.provider, *badge, id, item.quota);
                }
                Ok(false)
            }
            (ItemKind::Upgrade { .. }, _) => {
                let error = match result {
                    Delivery::Refused(error) => error,
                    _ => SessionError::BadRequest,
                };
                self.fail(item, error);
                Ok(false)
            }
            (ItemKind::Close { .. }, result) => {
                if let Delivery::Refused(error) = result {
                    let provider = self.child_name(item.provider).to_string();
                    self.say(&format!("{provider} refused a session close: {error}"));
                }
                self.closed(item);
                Ok(false)
            }
        }
    }

    /// A session was created: hand it to whoever asked, or close it again
    /// when nobody waits for it any more.
    fn created(&mut self, item: WorkItem, badge: u64, cap: CapSlot) -> bool {
        match item.origin {
            Origin::Child { client, session } => {
                let record = client.and_then(|client| {
                    self.sessions.iter_mut().find(|s| {
                        s.id == session
                            && s.client == client
                            && matches!(
                                s.via,
                                Via::Child {
                                    state: ChildSession::Pending,
                                    ..
                                }
                            )
                    })
                });
                if let Some(record) = record {
                    record.via = Via::Child {
                        provider: item.provider,
                        state: ChildSession::Open { badge },
                    };
                    record.cap = Some(cap);
                    return true;
                }
                // Closed (or its client gone) while pending: close it again.
                self.close_at_provider(item.provider, badge, client, session, item.quota);
                false
            }
            Origin::Parent { id } => {
                self.created_for_parent(item, id, badge, cap);
                false
            }
        }
    }

    /// A close was acknowledged (or refused, or expired): take the
    /// session's quota back from the server and return it.
    fn closed(&mut self, item: WorkItem) {
        if let Origin::Child { session, .. } = item.origin
            && self.ledger.has(session)
        {
            // The ledger takes the session's quota back and refunds it.
            return self.close_books(session);
        }
        let back = match self.child_pd(item.provider) {
            Ok(_) => self
                .move_quota(
                    Account::Child(item.provider),
                    Account::Init,
                    item.quota,
                    Purpose::TakeBack,
                )
                .is_ok(),
            // Its Pd is gone: everything it had is init's already.
            Err(_) => true,
        };
        match item.origin {
            Origin::Child { client, .. } if back => self.refund(client, item.quota),
            Origin::Child { .. } => {}
            Origin::Parent { id } => {
                self.deliver_upward(id, Delivery::Done, None);
            }
        }
    }

    /// Item `item` failed with `error`: its quota goes back where it came
    /// from (taken back from the server first, if it had moved there), and
    /// whoever asked is told.
    pub(crate) fn fail(&mut self, item: WorkItem, error: SessionError) {
        if matches!(item.kind, ItemKind::Close { .. }) {
            return self.closed(item);
        }
        if let Origin::Child { client, session } = item.origin
            && self.ledger.has(session)
        {
            return self.fail_in_books(item, client, session, error);
        }
        let at_provider = item.at_provider();
        let mut back = true;
        if self.child_pd(item.provider).is_ok() {
            back = self
                .move_quota(
                    Account::Child(item.provider),
                    Account::Init,
                    at_provider,
                    Purpose::TakeBack,
                )
                .is_ok();
        }
        let refund = if back { item.quota } else { item.at_init() };
        match item.origin {
            Origin::Child { client, session } => {
                let kept = self
                    .keep_failed_record(&item, client, session, error, refund.caps)
                    .unwrap_or_default();
                self.refund(
                    client,
                    Quota {
                        ram: refund.ram,
                        caps: refund.caps - kept.caps,
                    },
                );
            }
            Origin::Parent { id } => {
                self.deliver_upward(id, Delivery::Refused(error), None);
            }
        }
    }

    /// A failed create's record stays until its client asks after it, paid
    /// by one capability of the client's quota (of `caps` it donated): a
    /// client cannot pile up records init keeps for free. What the record
    /// keeps, or `None` when nobody waits for the session.
    fn keep_failed_record(
        &mut self,
        item: &WorkItem,
        client: Option<usize>,
        session: u32,
        error: SessionError,
        caps: u64,
    ) -> Option<Quota> {
        let client = client.filter(|_| matches!(item.kind, ItemKind::Create { .. }))?;
        let record = self
            .sessions
            .iter_mut()
            .find(|s| s.id == session && s.client == client)?;
        let kept = Quota {
            ram: 0,
            caps: PARENT_SESSION_CAPS.min(caps),
        };
        record.via = Via::Child {
            provider: item.provider,
            state: ChildSession::Failed(error),
        };
        record.quota = kept;
        Some(kept)
    }

    /// [`Init::fail`] for a session in the ledger: a create whose record
    /// stays keeps the capabilities its record costs and gives the rest
    /// back; a create nobody waits for is closed in the books; a refused
    /// upgrade gives its donation back.
    fn fail_in_books(
        &mut self,
        item: WorkItem,
        client: Option<usize>,
        session: u32,
        error: SessionError,
    ) {
        let kept = self.keep_failed_record(&item, client, session, error, item.quota.caps);
        let mut kernel = Pds {
            children: &self.children,
        };
        match (&item.kind, kept) {
            (ItemKind::Create { .. }, None) => {
                let _logged_below = self.ledger.close(&mut kernel, session);
            }
            (_, kept) => {
                let kept = kept.unwrap_or_default();
                let refund = Quota {
                    ram: item.quota.ram,
                    caps: item.quota.caps - kept.caps,
                };
                self.ledger
                    .give_back(&mut kernel, session, item.at_provider(), refund);
            }
        }
        self.report_refusals();
    }

    /// Session `id` ends: closed in the ledger if it is there, otherwise
    /// `quota` is refunded to `client`.
    pub(crate) fn settle(&mut self, id: u32, client: Option<usize>, quota: Quota) {
        if self.ledger.has(id) {
            self.close_books(id);
        } else {
            self.refund(client, quota);
        }
    }

    /// Reports and fails every item whose deadline has passed.
    pub(crate) fn check_deadlines(&mut self) {
        let now = self.now_ms();
        for item in self.work.expire(now) {
            let provider = self.child_name(item.provider).to_string();
            let asker = match item.origin {
                Origin::Child {
                    client: Some(client),
                    ..
                } => self.child_name(client).to_string(),
                Origin::Child { client: None, .. } => "a child that is gone".to_string(),
                Origin::Parent { .. } => "init's parent".to_string(),
            };
            self.say(&format!(
                "{provider} did not answer a {} from {asker} within {DEADLINE_MS} ms",
                item.what()
            ));
            self.fail(item, SessionError::NotAnswered);
        }
    }
}

/// The kernel as the ledger's [`ledger::Mover`]: accounts are init's and
/// its children's Pds. Moves to and from init's parent are made by the
/// parent in the call init made (a forwarded session), so they only count.
struct Pds<'a> {
    children: &'a [ChildState],
}

impl ledger::Mover for Pds<'_> {
    fn transfer(&mut self, from: Account, to: Account, quota: Quota) -> Result<(), abi::Error> {
        let pd = |account| match account {
            Account::Init => Ok(Some(slot::OWN_PD)),
            Account::Parent => Ok(None),
            Account::Child(index) => self
                .children
                .get(index)
                .and_then(|child| child.running.as_ref())
                .map(|child| Some(child.pd))
                .ok_or(abi::Error::InvalidCapability),
        };
        match (pd(from)?, pd(to)?) {
            (Some(from), Some(to)) => sys::transfer_quota(from, to, quota.ram, quota.caps),
            _ => Ok(()),
        }
    }
}
