//! A nested init offers its children's services to its own parent, the
//! same way any server does: its parent signals it (through a notification
//! bound to init's thread) when work is waiting, it fetches the work, posts
//! it to the child that provides the service, and delivers upward when that
//! child delivers. Quota the parent moved here moves on to the child with
//! the work item, and back when the session closes.

use super::*;

/// A session this (nested) init's parent opened through an exported service.
pub(crate) struct ExportSession {
    /// The badge the parent knows it by.
    pub(crate) badge: u64,
    pub(crate) provider: usize,
    /// The session's badge at the provider.
    pub(crate) inner_badge: u64,
    /// The quota that sits at the provider for it.
    pub(crate) at_provider: Quota,
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
        let Some(notification) = self.parent_signal_notification() else {
            self.say(&format!("cannot export {service}: no notification"));
            return;
        };
        let signal = match SlotGuard::allocate().and_then(|signal| {
            sys::derive(
                notification,
                signal.slot(),
                Rights::WRITE.union(Rights::GRANT),
                arbor_sessions::server::PARENT_WORK,
            )
            .map(|()| signal)
        }) {
            Ok(signal) => signal,
            Err(error) => {
                self.say(&format!("cannot export {service}: {error}"));
                return;
            }
        };
        // The parent holds its own copy; the guard releases ours.
        let announced = client::announce(service, signal.slot());
        if announced.is_ok() {
            self.exports.push((service.to_string(), provider));
        }
        // Otherwise the parent does not route this service to us: nothing to export.
    }

    /// The notification bound to init's thread that the parent signals,
    /// made on first use.
    fn parent_signal_notification(&mut self) -> Option<CapSlot> {
        if self.parent_signals.is_none() {
            let notification = SlotGuard::allocate().ok()?;
            sys::create(
                ObjectKind::Notification,
                slot::OWN_PD,
                notification.slot(),
                0,
            )
            .ok()?;
            sys::bind_notification(slot::OWN_THREAD, notification.slot()).ok()?;
            self.parent_signals = Some(notification.keep());
        }
        self.parent_signals
    }

    /// The parent signalled: fetch its work items until it has none left,
    /// and post each to the child providing the service.
    pub(crate) fn fetch_parent_work(&mut self) {
        loop {
            let mut buffer = [0u8; arbor::abi::PAYLOAD_MAX];
            match client::next_work(&mut buffer) {
                Ok(Some(work)) => self.post_parent_work(work),
                Ok(None) => return,
                Err(error) => {
                    self.say(&format!("fetching work from the parent failed: {error}"));
                    return;
                }
            }
        }
    }

    fn post_parent_work(&mut self, work: Work<'_>) {
        let now = self.now_ms();
        let (provider, kind, quota, id) = match work {
            Work::Create { id, call } => {
                let (service, label, args) = (call.service, call.label, call.args);
                let provider = self
                    .exports
                    .iter()
                    .find(|(s, _)| s == service)
                    .map(|(_, p)| *p)
                    .filter(|&p| {
                        self.child_pd(p).is_ok()
                            && self.children[p].signals.iter().any(|(s, _)| s == service)
                    });
                let Some(provider) = provider else {
                    self.deliver_upward(id, Delivery::Refused(SessionError::Unavailable), None);
                    return;
                };
                let kind = ItemKind::Create {
                    service: service.to_string(),
                    label: label.to_string(),
                    args: args.to_vec(),
                };
                (provider, kind, call.quota(), id)
            }
            Work::Upgrade {
                id,
                badge,
                ram,
                caps,
            } => {
                let Some(session) = self.export_sessions.iter().find(|e| e.badge == badge) else {
                    self.deliver_upward(id, Delivery::Refused(SessionError::NoSuchSession), None);
                    return;
                };
                let kind = ItemKind::Upgrade {
                    badge: session.inner_badge,
                };
                (session.provider, kind, Quota { ram, caps }, id)
            }
            Work::Close { id, badge } => {
                let Some(position) = self.export_sessions.iter().position(|e| e.badge == badge)
                else {
                    self.deliver_upward(id, Delivery::Done, None);
                    return;
                };
                let session = self.export_sessions.swap_remove(position);
                let kind = ItemKind::Close {
                    badge: session.inner_badge,
                };
                (session.provider, kind, session.at_provider, id)
            }
        };
        self.work.push(
            provider,
            kind,
            Origin::Parent { id },
            quota,
            now,
            DEADLINE_MS,
        );
        self.signal_provider(provider);
    }

    /// Tells the parent what came of its work item `id`.
    pub(crate) fn deliver_upward(
        &mut self,
        id: u32,
        result: Delivery,
        cap: Option<CapSlot>,
    ) -> bool {
        match client::deliver(id, result, cap) {
            Ok(()) => true,
            Err(error) => {
                self.say(&format!(
                    "the parent refused the answer to its request {id}: {error}"
                ));
                false
            }
        }
    }

    /// A child created a session the parent asked for: pass it upward.
    pub(crate) fn created_for_parent(
        &mut self,
        item: WorkItem,
        id: u32,
        inner_badge: u64,
        cap: CapSlot,
    ) {
        let badge = u64::from(self.next_id);
        self.next_id += 1;
        let delivered = self.deliver_upward(id, Delivery::Created { badge }, Some(cap));
        if delivered {
            self.export_sessions.push(ExportSession {
                badge,
                provider: item.provider,
                inner_badge,
                at_provider: item.at_provider(),
            });
        } else {
            // Nobody upstairs waits for it any more: close it again.
            let now = self.now_ms();
            self.work.push(
                item.provider,
                ItemKind::Close { badge: inner_badge },
                Origin::Child {
                    client: None,
                    session: 0,
                },
                item.at_provider(),
                now,
                DEADLINE_MS,
            );
            self.signal_provider(item.provider);
        }
    }

    /// A child took an upgrade the parent asked for.
    pub(crate) fn upgraded_for_parent(
        &mut self,
        provider: usize,
        inner_badge: u64,
        id: u32,
        quota: Quota,
    ) {
        if let Some(session) = self
            .export_sessions
            .iter_mut()
            .find(|e| e.provider == provider && e.inner_badge == inner_badge)
        {
            session.at_provider = session
                .at_provider
                .checked_add(quota)
                .unwrap_or(session.at_provider);
        }
        self.deliver_upward(id, Delivery::Done, None);
    }
}
