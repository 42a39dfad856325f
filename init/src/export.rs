//! A nested init offers its children's services to its own parent and
//! passes the parent's root calls on to the child that provides them.

use super::*;

/// A session this (nested) init's parent opened through an exported service.
pub(crate) struct ExportSession {
    /// The badge the parent knows it by.
    pub(crate) badge: u64,
    pub(crate) provider: usize,
    /// The session's badge at the provider, and the root it came through.
    pub(crate) inner_badge: u64,
    pub(crate) inner_root: CapSlot,
    pub(crate) ram: u64,
}

impl Init {
    /// A nested init offers a service its child announced to its own parent
    /// (which accepts it only if its config says this init provides it).
    pub(crate) fn export(&mut self, service: &str, provider: usize) {
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
            Err(_) => slots::release(root),
        }
    }

    /// The parent calls the root of a service this nested init exports:
    /// pass the call on to the child that provides it. The RAM the parent
    /// moved here moves on to that child, and back on close.
    pub(crate) fn export_request(
        &mut self,
        export: u64,
        incoming: &Incoming,
        server: &mut Endpoint,
    ) {
        let reply = match decode::<RootRequest<'_>>(incoming.bytes()) {
            Err(error) => RootReply::Error(error),
            Ok(request) => match self.forward_export(export, request) {
                Ok((reply, cap)) => return server.set_reply(&reply, cap),
                Err(error) => RootReply::Error(error),
            },
        };
        server.set_reply(&reply, None);
    }

    pub(crate) fn forward_export(
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
                    !self.blocked_calling(session.provider),
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
}
