//! Session requests of the children: routing them, moving the donated RAM
//! along, and serving each child's `config` ROM. init calls a child
//! server's root synchronously, and never while that server is itself
//! blocked in a call (which might be a call to init).

use super::*;

impl Init {
    /// Moves `ram` from Pd `payer` to child `provider` and calls its `root`
    /// with `request` (accepting a capability into a fresh slot when
    /// `with_cap`). Anything but the expected success moves the RAM back and
    /// becomes an error. A provider blocked in a call of its own is
    /// "unavailable" for now (the client asks again): init calls roots
    /// synchronously and must not wait on one that may be waiting on init.
    pub(crate) fn pay_and_call_root(
        &self,
        provider: usize,
        root: CapSlot,
        payer: CapSlot,
        ram: u64,
        request: &RootRequest<'_>,
        with_cap: bool,
    ) -> Result<(RootReply, Option<CapSlot>), SessionError> {
        let provider_pd = self.child_pd(provider)?;
        if self.blocked_calling(provider) {
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

    /// Whether child `index`'s thread is blocked sending or calling right now:
    /// init must not call such a server synchronously, for it may be waiting
    /// on init itself. A busy or waiting server answers in due course.
    pub(crate) fn blocked_calling(&self, index: usize) -> bool {
        self.children[index].running.as_ref().is_none_or(|child| {
            sys::info(info::THREAD_BLOCKED_CALLING, u64::from(child.thread.0)) != Ok((0, 0))
        })
    }

    pub(crate) fn child_pd(&self, index: usize) -> Result<CapSlot, SessionError> {
        self.children[index]
            .running
            .as_ref()
            .map(|c| c.pd)
            .ok_or(SessionError::Unavailable)
    }

    pub(crate) fn open_session(
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
    pub(crate) fn config_rom(
        &mut self,
        index: usize,
        id: u32,
        ram: u64,
    ) -> Result<CapSlot, SessionError> {
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

    pub(crate) fn local_request(&mut self, id: u64, incoming: &Incoming, server: &mut Endpoint) {
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

    pub(crate) fn upgrade(&mut self, index: usize, id: u32, ram: u64) -> Result<(), SessionError> {
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
    pub(crate) fn close(&mut self, index: usize, id: u32) -> Result<(), SessionError> {
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
                if let (Ok(provider_pd), true) =
                    (self.child_pd(provider), !self.blocked_calling(provider))
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
                slots::release(record.cap);
            }
            Via::Config { dataspace, .. } => {
                let _ = sys::destroy(dataspace);
                slots::release(dataspace);
                let _ = sys::destroy(record.cap);
                slots::release(record.cap);
                let _ = sys::transfer_quota(slot::OWN_PD, back_to, record.ram, 0);
            }
        }
        Ok(())
    }
}
